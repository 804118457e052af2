// Simulated hardware backend for the unix and qemu ports: an in-memory GPIO register and
// ADC channels that tests set to a value or feed a waveform. Same contract as the chip.
#include <string.h>

#include "py/runtime.h"
#include "backend.h"

#define SIM_WAVE_MAX (256)

const char iotlib_backend_name[] = "sim";
const uint32_t iotlib_board_gpio_mask = IOTLIB_PICO_W_GPIO_MASK;

static uint32_t sim_out; // the GPIO output register tests read back

typedef struct {
    uint16_t value;                 // what a conversion returns without a waveform
    uint16_t wave[SIM_WAVE_MAX];    // fed waveform, replayed cyclically
    uint16_t wave_len;
    uint16_t wave_pos;
} sim_adc_channel_t;

// The temperature sensor (channel 4) starts at 0.706 V, 27 C by the datasheet's formula, so a
// simulated chip reads room temperature until a test sets it (0 V would read 437 C).
#define SIM_TEMP_27C ((uint16_t)876)  // round(0.706 / 3.3 * 4096)
static sim_adc_channel_t sim_adc[IOTLIB_ADC_CHANNELS] = {[4] = {.value = SIM_TEMP_27C}};

void iotlib_gpio_claim_outputs(uint32_t mask, uint32_t level) {
    sim_out = (sim_out & ~mask) | (level & mask);
}

uint32_t iotlib_gpio_out_get(void) {
    return sim_out;
}

void iotlib_gpio_out_put_masked(uint32_t mask, uint32_t level) {
    // Same arithmetic as the SIO toggle write on the chip.
    sim_out ^= (sim_out ^ level) & mask;
}

static uint16_t sim_convert(unsigned ch) {
    sim_adc_channel_t *c = &sim_adc[ch];
    if (c->wave_len == 0) {
        return c->value;
    }
    uint16_t v = c->wave[c->wave_pos] & 0xfff; // 12 bits, like the chip
    c->wave_pos = (c->wave_pos + 1) % c->wave_len;
    return v;
}

void iotlib_adc_burst(const uint8_t *channels, size_t n_channels, uint16_t *buf, size_t count,
    uint32_t rate_hz) {
    (void)rate_hz; // simulated conversions take no time
    for (size_t i = 0; i < count; i++) {
        buf[i] = sim_convert(channels[i % n_channels]);
    }
}

uint32_t iotlib_sim_gpio(void) {
    return sim_out;
}

void iotlib_sim_adc_set(unsigned channel, uint16_t value) {
    sim_adc[channel].value = value;
    sim_adc[channel].wave_len = 0;
}

void iotlib_sim_adc_feed(unsigned channel, const uint16_t *values, size_t n) {
    sim_adc_channel_t *c = &sim_adc[channel];
    if (n > SIM_WAVE_MAX) {
        mp_raise_ValueError(MP_ERROR_TEXT("waveform longer than 256 samples"));
    }
    memcpy(c->wave, values, n * sizeof(uint16_t));
    c->wave_len = n;
    c->wave_pos = 0;
}
