// Simulation hooks: read the simulated GPIO register, set or feed simulated ADC channels.
// Present on every port so the API is the same; the rp2040 backend raises OSError.
#include "py/runtime.h"
#include "backend.h"
#include "iotlib.h"

static unsigned sim_channel(mp_obj_t ch_in) {
    mp_int_t ch = mp_obj_get_int(ch_in);
    if (ch < 0 || ch >= IOTLIB_ADC_CHANNELS) {
        mp_raise_ValueError(MP_ERROR_TEXT("channel must be 0-4"));
    }
    return (unsigned)ch;
}

// sim_gpio() -> int: the simulated GPIO output register.
static mp_obj_t iotlib_sim_gpio_fn(void) {
    return mp_obj_new_int_from_uint(iotlib_sim_gpio());
}
MP_DEFINE_CONST_FUN_OBJ_0(iotlib_sim_gpio_obj, iotlib_sim_gpio_fn);

// sim_adc_set(ch, value): every later conversion of ch returns value (12 bits).
static mp_obj_t iotlib_sim_adc_set_fn(mp_obj_t ch_in, mp_obj_t value_in) {
    unsigned ch = sim_channel(ch_in);
    mp_int_t value = mp_obj_get_int(value_in);
    if (value < 0 || value > 0xfff) {
        mp_raise_ValueError(MP_ERROR_TEXT("value must be 0-4095"));
    }
    iotlib_sim_adc_set(ch, (uint16_t)value);
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_2(iotlib_sim_adc_set_obj, iotlib_sim_adc_set_fn);

// sim_adc_feed(ch, array('H')): conversions of ch replay this waveform, cyclically.
static mp_obj_t iotlib_sim_adc_feed_fn(mp_obj_t ch_in, mp_obj_t wave_in) {
    unsigned ch = sim_channel(ch_in);
    mp_buffer_info_t bi;
    mp_get_buffer_raise(wave_in, &bi, MP_BUFFER_READ);
    if (bi.typecode != 'H' || bi.len == 0) {
        mp_raise_TypeError(MP_ERROR_TEXT("waveform must be a non-empty array('H')"));
    }
    iotlib_sim_adc_feed(ch, bi.buf, bi.len / sizeof(uint16_t));
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_2(iotlib_sim_adc_feed_obj, iotlib_sim_adc_feed_fn);
