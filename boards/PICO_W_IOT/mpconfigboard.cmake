# Pico W board for the IoT image. Variants (mpconfigvariant_<NAME>.cmake) pick the role.
#
# IOTLIB_WIRELESS: ON (the default, the product) links the CYW43 Wi-Fi driver and lwIP from
# lib/cyw43-driver and lib/lwip (firmware/fetch_deps.sh provides them); OFF builds the same board
# without the radio, for tests that need none.

set(PICO_BOARD "pico_w")
get_filename_component(IOTLIB_ROOT ${MICROPY_BOARD_DIR}/../.. ABSOLUTE)

if(NOT DEFINED IOTLIB_WIRELESS)
    set(IOTLIB_WIRELESS ON)
endif()

if(IOTLIB_WIRELESS)
    foreach(lib cyw43-driver/src/cyw43.h lwip/src/include/lwip/init.h)
        if(NOT EXISTS ${MICROPY_DIR}/lib/${lib})
            message(FATAL_ERROR "IOTLIB_WIRELESS=ON needs ${MICROPY_DIR}/lib/${lib}: build with firmware/build.sh (it unpacks cyw43-driver and lwIP), or IOTLIB_WIRELESS=OFF for the radio-less board")
        endif()
    endforeach()
    set(MICROPY_PY_LWIP ON)
    set(MICROPY_PY_NETWORK_CYW43 ON)
    list(APPEND MICROPY_DEF_BOARD IOTLIB_WIRELESS=1)
    # With Bluetooth off, upstream puts pico/cyw43_driver.h on no include path (it arrives through
    # the Bluetooth targets); the driver's SPI bus file needs it, so link the headers ourselves.
    function(_iotlib_cyw43_headers)
        target_link_libraries(${MICROPY_TARGET} pico_cyw43_driver_headers)
    endfunction()
    cmake_language(DEFER CALL _iotlib_cyw43_headers)
else()
    list(APPEND MICROPY_DEF_BOARD IOTLIB_WIRELESS=0)
endif()

# Bluetooth stays off: the devices talk Wi-Fi only, and btstack costs about 100 KB of flash.
set(MICROPY_PY_BLUETOOTH OFF)

# The variant picks its manifest (one role each); this is the role-less fallback.
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
set(USER_C_MODULES ${IOTLIB_ROOT}/c_modules/micropython.cmake)

# The filesystem is the end of flash from the loader's layout (IOT_FS_SIZE), with or without
# the loader, so switching IOTLIB_LOADER keeps the files.
include(${IOTLIB_ROOT}/firmware/loader/layout.cmake)
list(APPEND MICROPY_DEF_BOARD MICROPY_HW_FLASH_STORAGE_BYTES=${IOT_FS_SIZE})

file(READ ${IOTLIB_ROOT}/firmware/VERSION IOTLIB_VERSION)
string(STRIP "${IOTLIB_VERSION}" IOTLIB_VERSION)
list(APPEND MICROPY_DEF_BOARD IOTLIB_VERSION="${IOTLIB_VERSION}")

# --- OTA image loader (issue 7; firmware/loader/, docs/ota.md "Full image swap") -----------
# IOTLIB_LOADER=ON links the application at IOT_APP_ORIGIN, after boot2 + loader + journal, without
# its own boot2; c_modules/ota/micropython.cmake adds _iotimage. The linker script is derived
# from the port's at the end of ports/rp2's CMakeLists (deferred: the port sets its own script
# after including this file).
if(IOTLIB_LOADER)
    include(${IOTLIB_ROOT}/firmware/loader/after_loader.cmake)  # (includes layout.cmake again: harmless)
    function(_iotlib_link_after_loader)
        iot_link_after_loader(${MICROPY_TARGET} ${MICROPY_PORT_DIR}/memmap_mp_rp2040.ld)
    endfunction()
    cmake_language(DEFER CALL _iotlib_link_after_loader)
endif()
