# Relay controller role: the boot entry starts RelaysController.
list(APPEND MICROPY_DEF_BOARD
    IOTLIB_VARIANT="RELAYS"
    MICROPY_HW_BOARD_NAME="Raspberry Pi Pico W IoT (relays)"
)
