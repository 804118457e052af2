# rp2 port: the OTA wing's C parts.
# _iotota: OTA signature verification over the firmware's own Mbed TLS (the port links
# micropy_lib_mbedtls into the firmware target, which gives its include path and
# MBEDTLS_CONFIG_FILE to user-module sources).
# _iotimage (IOTLIB_LOADER=ON only): the application's side of the image loader
# (firmware/loader/): boot mode, stage verdict, confirm; its numbers from layout.h.
add_library(usermod_ota INTERFACE)

target_sources(usermod_ota INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_ota_verify.c
)

target_include_directories(usermod_ota INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

if(IOTLIB_LOADER)
    target_sources(usermod_ota INTERFACE
        ${CMAKE_CURRENT_LIST_DIR}/mod_iotimage.c
    )
    target_include_directories(usermod_ota INTERFACE
        ${CMAKE_CURRENT_LIST_DIR}/../../firmware/loader  # layout.h
    )
endif()

target_link_libraries(usermod INTERFACE usermod_ota)
