// _iotimage: the application's side of the image loader (firmware/loader/loader.c).
//
//   boot_mode() -> "normal" | "trial" | "safe" | "none"   (what the loader told this boot;
//                  "none": the image was started without the loader)
//   trial_boots() -> int         boots of the image on trial so far (loader's count)
//   confirm()                    ask the loader to mark the running trial image good; it is
//                                recorded at the next reset (call machine.reset() after it)
//   stage_begin()                drop any staged image (erases the staging header)
//   stage_write(index, data)     erase staging sector `index` and program up to 4096 bytes
//   stage_read(index, buf) -> n  copy up to 4096 bytes of staging sector `index` into buf
//                                (XIP read: how a resumed download re-hashes what it staged)
//   stage_commit(size, sha256, version) -> bool
//                                hash the staged bytes; if they match, write the header the
//                                loader installs from at the next reset
//   APP_SIZE, SECTOR_SIZE        the application region (largest image) and the sector size
#include <string.h>

#include "py/runtime.h"
#include "py/mphal.h"

#include "hardware/flash.h"
#include "hardware/structs/watchdog.h"
#include "hardware/sync.h"
#include "pico/multicore.h"
#include "rp2_flash.h"

#include "layout.h"
#include "sha256.h"

static uint32_t flash_begin(void) {
    if (multicore_lockout_victim_is_initialized(1 - get_core_num())) {
        multicore_lockout_start_blocking();
    }
    return save_and_disable_interrupts();
}

static void flash_end(uint32_t state) {
    restore_interrupts(state);
    if (multicore_lockout_victim_is_initialized(1 - get_core_num())) {
        multicore_lockout_end_blocking();
    }
    rp2_flash_set_timing(); // the ROM flash routines leave the default (slow) XIP timing
}

static void write_sector(uint32_t offset, const uint8_t *data, size_t len) {
    static uint8_t buf[IOT_FLASH_SECTOR];
    memset(buf, 0xff, sizeof buf);
    memcpy(buf, data, len);
    uint32_t st = flash_begin();
    flash_range_erase(offset, IOT_FLASH_SECTOR);
    flash_range_program(offset, buf, IOT_FLASH_SECTOR);
    flash_end(st);
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
    uint32_t n = watchdog_hw->scratch[IOT_SCRATCH_INFO];
    return MP_OBJ_NEW_SMALL_INT(n <= 255 ? n : 0);
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_trial_boots_obj, iotimage_trial_boots);

static mp_obj_t iotimage_confirm(void) {
    watchdog_hw->scratch[IOT_SCRATCH_REQUEST] = IOT_REQ_CONFIRM;
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_confirm_obj, iotimage_confirm);

static mp_obj_t iotimage_stage_begin(void) {
    uint32_t st = flash_begin();
    flash_range_erase(IOT_STAGE_HDR_OFFSET, IOT_FLASH_SECTOR);
    flash_end(st);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(iotimage_stage_begin_obj, iotimage_stage_begin);

static mp_obj_t iotimage_stage_write(mp_obj_t index_in, mp_obj_t data_in) {
    mp_int_t index = mp_obj_get_int(index_in);
    mp_buffer_info_t b;
    mp_get_buffer_raise(data_in, &b, MP_BUFFER_READ);
    if (index < 0 || (uint32_t)index >= IOT_APP_SIZE / IOT_FLASH_SECTOR || b.len > IOT_FLASH_SECTOR) {
        mp_raise_ValueError(MP_ERROR_TEXT("staging sector out of range"));
    }
    write_sector(IOT_STAGE_OFFSET + index * IOT_FLASH_SECTOR, b.buf, b.len);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(iotimage_stage_write_obj, iotimage_stage_write);

static mp_obj_t iotimage_stage_read(mp_obj_t index_in, mp_obj_t buf_in) {
    mp_int_t index = mp_obj_get_int(index_in);
    mp_buffer_info_t b;
    mp_get_buffer_raise(buf_in, &b, MP_BUFFER_WRITE);
    if (index < 0 || (uint32_t)index >= IOT_APP_SIZE / IOT_FLASH_SECTOR) {
        mp_raise_ValueError(MP_ERROR_TEXT("staging sector out of range"));
    }
    size_t n = b.len < IOT_FLASH_SECTOR ? b.len : IOT_FLASH_SECTOR;
    memcpy(b.buf, (const uint8_t *)(XIP_BASE + IOT_STAGE_OFFSET + index * IOT_FLASH_SECTOR), n);
    return MP_OBJ_NEW_SMALL_INT(n);
}
static MP_DEFINE_CONST_FUN_OBJ_2(iotimage_stage_read_obj, iotimage_stage_read);

static mp_obj_t iotimage_stage_commit(mp_obj_t size_in, mp_obj_t sha_in, mp_obj_t version_in) {
    mp_int_t size = mp_obj_get_int(size_in);
    mp_buffer_info_t sha;
    mp_get_buffer_raise(sha_in, &sha, MP_BUFFER_READ);
    size_t vlen;
    const char *version = mp_obj_str_get_data(version_in, &vlen);
    if (size <= 0 || (uint32_t)size > IOT_APP_SIZE || sha.len != 32) {
        mp_raise_ValueError(MP_ERROR_TEXT("bad size or sha256"));
    }
    uint8_t d[32];
    iot_sha256_t s;
    iot_sha256_init(&s);
    for (mp_int_t off = 0; off < size; off += IOT_FLASH_SECTOR) {
        mp_int_t n = size - off < (mp_int_t)IOT_FLASH_SECTOR ? size - off : (mp_int_t)IOT_FLASH_SECTOR;
        iot_sha256_update(&s, (const uint8_t *)(XIP_BASE + IOT_STAGE_OFFSET + off), n);
        mp_handle_pending(true);
    }
    iot_sha256_final(&s, d);
    if (memcmp(d, sha.buf, 32) != 0) {
        return mp_const_false;
    }
    // Header: magic, format 1, size, sha256, version[16], sha256 of these 64 bytes (loader.c).
    uint8_t h[96];
    memset(h, 0, sizeof h);
    memcpy(h, IOT_STAGE_MAGIC, 8);
    uint32_t fmt = 1, sz = size;
    memcpy(h + 8, &fmt, 4);
    memcpy(h + 12, &sz, 4);
    memcpy(h + 16, sha.buf, 32);
    memcpy(h + 48, version, vlen < 16 ? vlen : 16);
    iot_sha256_init(&s);
    iot_sha256_update(&s, h, 64);
    iot_sha256_final(&s, h + 64);
    write_sector(IOT_STAGE_HDR_OFFSET, h, sizeof h);
    return mp_const_true;
}
static MP_DEFINE_CONST_FUN_OBJ_3(iotimage_stage_commit_obj, iotimage_stage_commit);

static const mp_rom_map_elem_t iotimage_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__iotimage) },
    { MP_ROM_QSTR(MP_QSTR_boot_mode), MP_ROM_PTR(&iotimage_boot_mode_obj) },
    { MP_ROM_QSTR(MP_QSTR_trial_boots), MP_ROM_PTR(&iotimage_trial_boots_obj) },
    { MP_ROM_QSTR(MP_QSTR_confirm), MP_ROM_PTR(&iotimage_confirm_obj) },
    { MP_ROM_QSTR(MP_QSTR_stage_begin), MP_ROM_PTR(&iotimage_stage_begin_obj) },
    { MP_ROM_QSTR(MP_QSTR_stage_write), MP_ROM_PTR(&iotimage_stage_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_stage_read), MP_ROM_PTR(&iotimage_stage_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_stage_commit), MP_ROM_PTR(&iotimage_stage_commit_obj) },
    { MP_ROM_QSTR(MP_QSTR_APP_SIZE), MP_ROM_INT(IOT_APP_SIZE) },
    { MP_ROM_QSTR(MP_QSTR_SECTOR_SIZE), MP_ROM_INT(IOT_FLASH_SECTOR) },
};
static MP_DEFINE_CONST_DICT(iotimage_globals, iotimage_globals_table);

const mp_obj_module_t iotimage_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&iotimage_globals,
};

MP_REGISTER_MODULE(MP_QSTR__iotimage, iotimage_module);
