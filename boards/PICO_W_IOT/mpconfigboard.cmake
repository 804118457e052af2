# Pico W board for the IoT image. Variants (mpconfigvariant_<NAME>.cmake) pick the role.
#
# IOTLIB_WIRELESS: ON links the CYW43 Wi-Fi driver and lwIP (needs an upstream MicroPython
# checkout with lib/cyw43-driver); OFF builds the same board without the radio, which is the
# image CI boots in the rp2040py emulator. The default follows what MICROPY_DIR provides.

set(PICO_BOARD "pico_w")
get_filename_component(IOTLIB_ROOT ${MICROPY_BOARD_DIR}/../.. ABSOLUTE)

if(NOT DEFINED IOTLIB_WIRELESS)
    if(EXISTS ${MICROPY_DIR}/lib/cyw43-driver/src/cyw43.h)
        set(IOTLIB_WIRELESS ON)
    else()
        set(IOTLIB_WIRELESS OFF)
    endif()
endif()

if(IOTLIB_WIRELESS)
    if(NOT EXISTS ${MICROPY_DIR}/lib/cyw43-driver/src/cyw43.h)
        message(FATAL_ERROR "IOTLIB_WIRELESS=ON needs lib/cyw43-driver: pass MICROPY_DIR=<full upstream checkout with submodules>")
    endif()
    set(MICROPY_PY_LWIP ON)
    set(MICROPY_PY_NETWORK_CYW43 ON)
    list(APPEND MICROPY_DEF_BOARD IOTLIB_WIRELESS=1)
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
# IOTLIB_LOADER=ON links the application at 0x10006000, after boot2 + loader + journal, without
# its own boot2. The linker script is derived from the port's at the end of ports/rp2's
# CMakeLists (deferred: the port sets its own script after including this file).
if(IOTLIB_LOADER)
    list(APPEND USER_C_MODULES ${IOTLIB_ROOT}/firmware/loader/mp_module/micropython.cmake)  # _iotimage
    include(${IOTLIB_ROOT}/firmware/loader/after_loader.cmake)  # (includes layout.cmake again: harmless)
    function(_iotlib_link_after_loader)
        iot_link_after_loader(${MICROPY_TARGET} ${MICROPY_PORT_DIR}/memmap_mp_rp2040.ld)
    endfunction()
    cmake_language(DEFER CALL _iotlib_link_after_loader)
endif()
