# The flash layout of layout.h for CMake (keep the two in step; tests/test_ota_image.py checks).
set(IOT_LOADER_LENGTH 16k)
set(IOT_APP_ORIGIN 0x10006000)
set(IOT_APP_LENGTH 584k)
