# Sensor controller role: the boot entry starts SensorsController.
list(APPEND MICROPY_DEF_BOARD
    IOTLIB_VARIANT="SENSORS"
    MICROPY_HW_BOARD_NAME="Raspberry Pi Pico W IoT (sensors)"
)

# Only this role is frozen into the image.
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest_SENSORS.py)
