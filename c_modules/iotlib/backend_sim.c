// Simulated hardware backend for the unix and qemu ports.
#include "backend.h"

const char iotlib_backend_name[] = "sim";
