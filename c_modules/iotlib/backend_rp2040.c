// RP2040 hardware backend: real registers through the pico-sdk.
#include "py/runtime.h"
#include "py/mperrno.h"
#include "hardware/adc.h"
#include "hardware/gpio.h"
#include "hardware/sync.h"
#include "hardware/structs/sio.h"
#include "backend.h"

#define ADC_CLOCK_HZ (48000000u)
#define ADC_TEMP_CHANNEL (4)
#define ADC_FIRST_GPIO (26)

const char iotlib_backend_name[] = "rp2040";
const uint32_t iotlib_board_gpio_mask = IOTLIB_PICO_W_GPIO_MASK;

// ---- GPIO ----------------------------------------------------------------------------

void iotlib_gpio_claim_outputs(uint32_t mask, uint32_t level) {
    // Level first, then the driver: the pin goes straight to its OFF level.
    gpio_put_masked(mask, level);
    gpio_set_dir_out_masked(mask);
    for (uint pin = 0; pin < 30; pin++) {
        if (mask & (1u << pin)) {
            gpio_set_function(pin, GPIO_FUNC_SIO);
        }
    }
}

// ---- ADC -----------------------------------------------------------------------------

static void adc_stop_and_drain(void) {
    adc_run(false);
    // A conversion already started still lands in the FIFO: wait for it, then empty it.
    while (!(adc_hw->cs & ADC_CS_READY_BITS)) {
    }
    adc_fifo_drain();
}

void iotlib_adc_burst(const uint8_t *channels, size_t n_channels, uint16_t *buf, size_t count,
    uint32_t rate_hz) {
    if (!(adc_hw->cs & ADC_CS_EN_BITS)) {
        adc_init();
    }
    uint32_t rr_mask = 0;
    bool temp = false;
    for (size_t i = 0; i < n_channels; i++) {
        rr_mask |= 1u << channels[i];
        if (channels[i] == ADC_TEMP_CHANNEL) {
            temp = true;
        } else if (channels[i] < 3) {
            // GPIO 29 (channel 3) stays untouched: on the Pico W it is the radio's clock.
            adc_gpio_init(ADC_FIRST_GPIO + channels[i]);
        }
    }
    adc_stop_and_drain();
    adc_set_temp_sensor_enabled(temp || (adc_hw->cs & ADC_CS_TS_EN_BITS));
    adc_select_input(channels[0]);
    adc_set_round_robin(n_channels > 1 ? rr_mask : 0);
    adc_fifo_setup(true, false, 1, false, false);
    adc_hw->fcs |= ADC_FCS_OVER_BITS | ADC_FCS_UNDER_BITS; // sticky flags: write 1 to clear
    // Pacing: one conversion every (DIV + 1) ADC clocks, DIV in 1/256ths.
    uint32_t div = (uint32_t)(((uint64_t)ADC_CLOCK_HZ * 256u) / rate_hz) - 256u;
    adc_hw->div = div;
    adc_run(true);
    for (size_t i = 0; i < count; i++) {
        while (adc_hw->fcs & ADC_FCS_EMPTY_BITS) {
        }
        buf[i] = adc_hw->fifo & 0xfff;
    }
    // Checked before stopping: a conversion finishing after the last read may overflow
    // the FIFO harmlessly, and is drained below.
    bool overrun = adc_hw->fcs & ADC_FCS_OVER_BITS;
    adc_stop_and_drain();
    adc_set_round_robin(0);
    adc_fifo_setup(false, false, 0, false, false);
    adc_hw->div = 0;
    if (overrun) {
        // A lost sample shifts the round-robin interleave: the buffer cannot be trusted.
        mp_raise_OSError(MP_EIO);
    }
}

// ---- Simulation hooks: there is no simulation on the chip ----------------------------

static NORETURN void sim_only(void) {
    mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("simulation only"));
}

uint32_t iotlib_sim_gpio(void) {
    sim_only();
}

void iotlib_sim_adc_set(unsigned channel, uint16_t value) {
    (void)channel;
    (void)value;
    sim_only();
}

void iotlib_sim_adc_feed(unsigned channel, const uint16_t *values, size_t n) {
    (void)channel;
    (void)values;
    (void)n;
    sim_only();
}
