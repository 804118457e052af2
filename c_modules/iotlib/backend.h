// The hardware layer under the _iotlib module: one implementation per target
// (backend_rp2040.c on the chip, backend_sim.c on unix and qemu). The module's
// Python-visible API is the same on every port; only these functions differ.
#ifndef IOTLIB_BACKEND_H
#define IOTLIB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

// Short name of the backend in use ("rp2040" or "sim"), reported by build_info().
extern const char iotlib_backend_name[];

// GPIOs this board lets relays drive at all. Pico W: 0-22 and 26-28; 23, 24, 25 and 29
// belong to the CYW43 radio.
#define IOTLIB_PICO_W_GPIO_MASK (0x007fffffu | 0x1c000000u)
extern const uint32_t iotlib_board_gpio_mask;

#define IOTLIB_ADC_CHANNELS (5)       // 0-3 on GPIO 26-29, 4 is the temperature sensor
#define IOTLIB_ADC_MAX_RATE (500000u) // samples per second, the RP2040 ADC's limit
#define IOTLIB_ADC_MIN_RATE (733u)    // slowest the 16.8-bit clock divider can pace

// Make the pins in `mask` SIO outputs, driving `level` before the driver is enabled
// so a relay never glitches on at start-up.
void iotlib_gpio_claim_outputs(uint32_t mask, uint32_t level);
#if IOTLIB_BACKEND_SIM
// Current output register (every pin, one read).
uint32_t iotlib_gpio_out_get(void);
// Drive the pins in `mask` to `level` with one register write: they change together.
void iotlib_gpio_out_put_masked(uint32_t mask, uint32_t level);
#else
// The same two on the chip, inline: they are the relay batch's only register accesses.
#include "backend_rp2040_gpio.h"
#endif

// Fill buf[0..count) with 12-bit samples taken round-robin over `channels` (ascending,
// unique), starting with channels[0], paced at `rate_hz` conversions per second.
void iotlib_adc_burst(const uint8_t *channels, size_t n_channels, uint16_t *buf, size_t count,
    uint32_t rate_hz);

// Simulation hooks (the rp2040 backend raises OSError("simulation only")).
uint32_t iotlib_sim_gpio(void);
void iotlib_sim_adc_set(unsigned channel, uint16_t value);
void iotlib_sim_adc_feed(unsigned channel, const uint16_t *values, size_t n);

#endif
