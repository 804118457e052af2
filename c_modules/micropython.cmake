# Entry for CMake ports (rp2): every user C module of the image.
include(${CMAKE_CURRENT_LIST_DIR}/iotlib/micropython.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/ota/micropython.cmake)
