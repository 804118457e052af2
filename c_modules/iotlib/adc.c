// ADC bursts: round-robin samples into a caller-owned array('H'), with per-channel
// min/max/mean computed here so a sensor reading costs no Python loop.
#include "py/runtime.h"
#include "backend.h"
#include "iotlib.h"

// Checks `channels` (ascending, unique, 0-4) into out[]; returns how many.
static size_t adc_get_channels(mp_obj_t channels, uint8_t *out) {
    size_t n;
    mp_obj_t *items;
    mp_obj_get_array(channels, &n, &items);
    if (n == 0 || n > IOTLIB_ADC_CHANNELS) {
        mp_raise_ValueError(MP_ERROR_TEXT("need 1-5 channels"));
    }
    for (size_t i = 0; i < n; i++) {
        mp_int_t ch = mp_obj_get_int(items[i]);
        // Ascending because the hardware round-robin visits channels in that order.
        if (ch < 0 || ch >= IOTLIB_ADC_CHANNELS || (i > 0 && ch <= out[i - 1])) {
            mp_raise_ValueError(MP_ERROR_TEXT("channels must be ascending, unique, 0-4"));
        }
        out[i] = (uint8_t)ch;
    }
    return n;
}

// adc_burst(channels, buf, rate_hz) -> (count, [(min, max, mean), ...])
static mp_obj_t adc_burst_fn(mp_obj_t channels_in, mp_obj_t buf_in, mp_obj_t rate_in) {
    uint8_t channels[IOTLIB_ADC_CHANNELS];
    size_t n_ch = adc_get_channels(channels_in, channels);
    mp_buffer_info_t bi;
    mp_get_buffer_raise(buf_in, &bi, MP_BUFFER_WRITE);
    if (bi.typecode != 'H') {
        mp_raise_TypeError(MP_ERROR_TEXT("buf must be array('H')"));
    }
    size_t count = bi.len / sizeof(uint16_t) / n_ch * n_ch; // whole rounds only
    if (count == 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("buf holds no full round"));
    }
    mp_int_t rate = mp_obj_get_int(rate_in);
    if (rate < IOTLIB_ADC_MIN_RATE || rate > IOTLIB_ADC_MAX_RATE) {
        mp_raise_ValueError(MP_ERROR_TEXT("rate_hz must be 733-500000"));
    }
    uint16_t *buf = bi.buf;
    iotlib_adc_burst(channels, n_ch, buf, count, (uint32_t)rate);

    mp_obj_t stats = mp_obj_new_list(n_ch, NULL);
    for (size_t c = 0; c < n_ch; c++) {
        uint16_t lo = 0xffff, hi = 0;
        uint64_t sum = 0;
        for (size_t i = c; i < count; i += n_ch) {
            uint16_t v = buf[i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        size_t n = count / n_ch;
        mp_obj_t t[3] = {
            MP_OBJ_NEW_SMALL_INT(lo),
            MP_OBJ_NEW_SMALL_INT(hi),
            mp_obj_new_float((mp_float_t)sum / (mp_float_t)n),
        };
        mp_obj_list_store(stats, MP_OBJ_NEW_SMALL_INT(c), mp_obj_new_tuple(3, t));
    }
    mp_obj_t result[2] = { MP_OBJ_NEW_SMALL_INT(count), stats };
    return mp_obj_new_tuple(2, result);
}
MP_DEFINE_CONST_FUN_OBJ_3(iotlib_adc_burst_obj, adc_burst_fn);
