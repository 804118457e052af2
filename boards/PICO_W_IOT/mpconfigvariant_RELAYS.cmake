# Relay controller role: the boot entry starts RelaysController.
list(APPEND MICROPY_DEF_BOARD
    IOTLIB_VARIANT="RELAYS"
    MICROPY_HW_BOARD_NAME="Raspberry Pi Pico W IoT (relays)"
)

# Only this role is frozen into the image.
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest_RELAYS.py)
