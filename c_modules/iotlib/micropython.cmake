# rp2 port: the C module over the RP2040 hardware backend.
add_library(usermod_iotlib INTERFACE)

target_sources(usermod_iotlib INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_iotlib.c
    ${CMAKE_CURRENT_LIST_DIR}/relay.c
    ${CMAKE_CURRENT_LIST_DIR}/adc.c
    ${CMAKE_CURRENT_LIST_DIR}/jsonlog.c
    ${CMAKE_CURRENT_LIST_DIR}/logring.c
    ${CMAKE_CURRENT_LIST_DIR}/sim.c
    ${CMAKE_CURRENT_LIST_DIR}/backend_rp2040.c
)

target_include_directories(usermod_iotlib INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
)

target_link_libraries(usermod INTERFACE usermod_iotlib)
