// RP2040 hardware backend: real registers through the pico-sdk.
#include "backend.h"

const char iotlib_backend_name[] = "rp2040";
