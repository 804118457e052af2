// What the hot-path files (relay.c, adc.c, jsonlog.c, logring.c) give the module table in mod_iotlib.c.
#ifndef IOTLIB_IOTLIB_H
#define IOTLIB_IOTLIB_H

#include "py/obj.h"

extern const mp_obj_type_t iotlib_relay_bank_type;
MP_DECLARE_CONST_FUN_OBJ_3(iotlib_adc_burst_obj);
MP_DECLARE_CONST_FUN_OBJ_VAR_BETWEEN(iotlib_frame_into_obj);
MP_DECLARE_CONST_FUN_OBJ_VAR_BETWEEN(iotlib_frame_at_obj);
extern const mp_obj_type_t iotlib_log_ring_type;
// jsonlog.c's record framing, for the log ring (logring.c); ts MP_OBJ_NULL: the stamp is
// the seconds in ts_s
mp_int_t iotlib_frame_record_at(mp_obj_t buf, mp_int_t at, mp_obj_t ts, mp_uint_t ts_s,
    mp_obj_t level, mp_obj_t msg, mp_obj_t fields, mp_obj_t mask_keys);
MP_DECLARE_CONST_FUN_OBJ_0(iotlib_sim_gpio_obj);
MP_DECLARE_CONST_FUN_OBJ_2(iotlib_sim_adc_set_obj);
MP_DECLARE_CONST_FUN_OBJ_2(iotlib_sim_adc_feed_obj);

#endif
