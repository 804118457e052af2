# rp2 port: _iotota, OTA signature verification over the firmware's own Mbed TLS
# (the port links micropy_lib_mbedtls into the firmware target, which gives its
# include path and MBEDTLS_CONFIG_FILE to user-module sources).
add_library(usermod_ota INTERFACE)

target_sources(usermod_ota INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_ota_verify.c
)

target_include_directories(usermod_ota INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_ota)
