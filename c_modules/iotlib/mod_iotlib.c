// _iotlib: the C half of iotlib. Module table and build information; the hot paths
// (relay batching, ADC bursts, JSON log framing) live in one file each beside this one.
#include <string.h>

#include "py/runtime.h"
#include "py/objstr.h"
#include "backend.h"
#include "iotlib.h"

#ifndef IOTLIB_VERSION
#define IOTLIB_VERSION "0.0.0"
#endif
#ifndef IOTLIB_VARIANT
#define IOTLIB_VARIANT "SIM"
#endif
#ifndef IOTLIB_WIRELESS
#define IOTLIB_WIRELESS 0
#endif

static void dict_store_str(mp_obj_t dict, qstr key, const char *value) {
    mp_obj_dict_store(dict, MP_OBJ_NEW_QSTR(key), mp_obj_new_str(value, strlen(value)));
}

// build_info() -> dict: what this image is, so tests and /health can tell images apart.
static mp_obj_t iotlib_build_info(void) {
    mp_obj_t info = mp_obj_new_dict(5);
    dict_store_str(info, MP_QSTR_version, IOTLIB_VERSION);
    dict_store_str(info, MP_QSTR_variant, IOTLIB_VARIANT);
    dict_store_str(info, MP_QSTR_backend, iotlib_backend_name);
    dict_store_str(info, MP_QSTR_micropython, MICROPY_VERSION_STRING);
    mp_obj_dict_store(info, MP_OBJ_NEW_QSTR(MP_QSTR_wireless), mp_obj_new_bool(IOTLIB_WIRELESS));
    return info;
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotlib_build_info_obj, iotlib_build_info);

static const mp_rom_map_elem_t iotlib_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__iotlib) },
    { MP_ROM_QSTR(MP_QSTR_build_info), MP_ROM_PTR(&iotlib_build_info_obj) },
    { MP_ROM_QSTR(MP_QSTR_RelayBank), MP_ROM_PTR(&iotlib_relay_bank_type) },
    { MP_ROM_QSTR(MP_QSTR_BOARD_GPIO_MASK), MP_ROM_INT(IOTLIB_PICO_W_GPIO_MASK) },
    { MP_ROM_QSTR(MP_QSTR_adc_burst), MP_ROM_PTR(&iotlib_adc_burst_obj) },
    { MP_ROM_QSTR(MP_QSTR_frame_into), MP_ROM_PTR(&iotlib_frame_into_obj) },
    { MP_ROM_QSTR(MP_QSTR_frame_at), MP_ROM_PTR(&iotlib_frame_at_obj) },
    { MP_ROM_QSTR(MP_QSTR_LogRing), MP_ROM_PTR(&iotlib_log_ring_type) },
    { MP_ROM_QSTR(MP_QSTR_sim_gpio), MP_ROM_PTR(&iotlib_sim_gpio_obj) },
    { MP_ROM_QSTR(MP_QSTR_sim_adc_set), MP_ROM_PTR(&iotlib_sim_adc_set_obj) },
    { MP_ROM_QSTR(MP_QSTR_sim_adc_feed), MP_ROM_PTR(&iotlib_sim_adc_feed_obj) },
};
static MP_DEFINE_CONST_DICT(iotlib_module_globals, iotlib_module_globals_table);

const mp_obj_module_t iotlib_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&iotlib_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__iotlib, iotlib_user_cmodule);
