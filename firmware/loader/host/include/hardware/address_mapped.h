#pragma once
#include "pico_host.h"
