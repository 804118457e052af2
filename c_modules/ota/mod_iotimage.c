// _iotimage: the application's side of the image loader (firmware/loader/loader.c; built with
// IOTLIB_LOADER=ON, c_modules/ota/micropython.cmake). The staged image itself is an ordinary
// file (iotlib/ota/image.py writes it); this module only reads what the loader left in the
// watchdog scratch registers and leaves it a confirm.
//
//   boot_mode() -> "normal" | "trial" | "safe" | "none"   (what the loader told this boot;
//                  "none": the image was started without the loader)
//   trial_boots() -> int         boots of the image on trial so far (loader's count)
//   stage_verdict() -> "none" | "installed" | "bad_header" | "truncated" | "bad_stream" | "bad_hash"
//                                what the loader did with the staged file at this boot; every
//                                answer but "none" means the file has served and is deleted
//   confirm()                    ask the loader to mark the running trial image good; it is
//                                recorded at the next reset (call machine.reset() after it)
// The layout's numbers are not repeated here: Python reads them from iotlib.ota.layout, which
// the build generates from layout.h. (A STAGE_PATH constant here once named its qstr
// MP_QSTR_ota_slash_image_dot_z, whose value is that identifier, not "ota/image.z"; with the
// frozen layout module's "ota/image.z" the two names collided and the frozen string took the
// wrong value: test_image_rp2.py's stage.path checks it.)
#include "py/runtime.h"

#include "hardware/structs/watchdog.h"

#include "layout.h"

static bool from_loader(void) {
    switch (watchdog_hw->scratch[IOT_SCRATCH_BOOTMODE]) {
        case IOT_BOOT_NORMAL: case IOT_BOOT_TRIAL: case IOT_BOOT_SAFE: return true;
        default: return false;
    }
}

static mp_obj_t iotimage_boot_mode(void) {
    switch (watchdog_hw->scratch[IOT_SCRATCH_BOOTMODE]) {
        case IOT_BOOT_NORMAL: return MP_OBJ_NEW_QSTR(MP_QSTR_normal);
        case IOT_BOOT_TRIAL: return MP_OBJ_NEW_QSTR(MP_QSTR_trial);
        case IOT_BOOT_SAFE: return MP_OBJ_NEW_QSTR(MP_QSTR_safe);
        default: return MP_OBJ_NEW_QSTR(MP_QSTR_none);
    }
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_boot_mode_obj, iotimage_boot_mode);

static mp_obj_t iotimage_trial_boots(void) {
    return MP_OBJ_NEW_SMALL_INT(from_loader() ? watchdog_hw->scratch[IOT_SCRATCH_INFO] & 0xff : 0);
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_trial_boots_obj, iotimage_trial_boots);

static mp_obj_t iotimage_stage_verdict(void) {
    static const qstr names[] = {
        [IOT_VERDICT_NONE] = MP_QSTR_none, [IOT_VERDICT_INSTALLED] = MP_QSTR_installed,
        [IOT_VERDICT_BAD_HEADER] = MP_QSTR_bad_header, [IOT_VERDICT_TRUNCATED] = MP_QSTR_truncated,
        [IOT_VERDICT_BAD_STREAM] = MP_QSTR_bad_stream, [IOT_VERDICT_BAD_HASH] = MP_QSTR_bad_hash,
    };
    uint32_t v = from_loader() ? (watchdog_hw->scratch[IOT_SCRATCH_INFO] >> 8) & 0xff : IOT_VERDICT_NONE;
    return MP_OBJ_NEW_QSTR(v < MP_ARRAY_SIZE(names) ? names[v] : MP_QSTR_none);
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_stage_verdict_obj, iotimage_stage_verdict);

static mp_obj_t iotimage_confirm(void) {
    watchdog_hw->scratch[IOT_SCRATCH_REQUEST] = IOT_REQ_CONFIRM;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_confirm_obj, iotimage_confirm);

static const mp_rom_map_elem_t iotimage_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__iotimage) },
    { MP_ROM_QSTR(MP_QSTR_boot_mode), MP_ROM_PTR(&iotimage_boot_mode_obj) },
    { MP_ROM_QSTR(MP_QSTR_trial_boots), MP_ROM_PTR(&iotimage_trial_boots_obj) },
    { MP_ROM_QSTR(MP_QSTR_stage_verdict), MP_ROM_PTR(&iotimage_stage_verdict_obj) },
    { MP_ROM_QSTR(MP_QSTR_confirm), MP_ROM_PTR(&iotimage_confirm_obj) },
};
static MP_DEFINE_CONST_DICT(iotimage_globals, iotimage_globals_table);

const mp_obj_module_t iotimage_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&iotimage_globals,
};

MP_REGISTER_MODULE(MP_QSTR__iotimage, iotimage_module);
