# The flash layout for CMake, read from layout.h (the one place it is written down):
# IOT_<NAME> for each numeric define, plus the linker script forms used here.
file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/layout.h _iot_defines REGEX "^#define IOT_[A-Z0-9_]+ +0x[0-9a-fA-F]+u")
foreach(_line IN LISTS _iot_defines)
    string(REGEX MATCH "^#define (IOT_[A-Z0-9_]+) +(0x[0-9a-fA-F]+)u" _m "${_line}")
    math(EXPR ${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
endforeach()
math(EXPR _kb "${IOT_LOADER_SIZE} / 1024")
set(IOT_LOADER_LENGTH ${_kb}k)
math(EXPR IOT_APP_ORIGIN "0x10000000 + ${IOT_APP_OFFSET}" OUTPUT_FORMAT HEXADECIMAL)
math(EXPR _kb "${IOT_APP_SIZE} / 1024")
set(IOT_APP_LENGTH ${_kb}k)
