# rp2 port, IOTLIB_LOADER=ON only (boards/PICO_W_IOT/mpconfigboard.cmake): _iotimage, the
# application's side of the image loader (boot mode, stage verdict, confirm).
add_library(usermod_iotimage INTERFACE)
target_sources(usermod_iotimage INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}/mod_iotimage.c
)
target_include_directories(usermod_iotimage INTERFACE
    ${CMAKE_CURRENT_LIST_DIR}
    ${CMAKE_CURRENT_LIST_DIR}/..
)
target_link_libraries(usermod INTERFACE usermod_iotimage)
