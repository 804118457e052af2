// Relay GPIO batching: a bank of named output pins changed by one register write,
// with the board's pin mask, per-pin active-low and an interlock table checked in C.
#include "py/runtime.h"
#include "py/objstr.h"
#include "backend.h"
#include "iotlib.h"

typedef struct {
    mp_obj_base_t base;
    mp_obj_t names;          // dict: relay name -> GPIO number
    mp_obj_t lock_names;     // tuple of (name, name), for error messages
    mp_obj_t lock_error;     // exception type raised on an interlock violation
    uint32_t *lock_masks;    // one two-bit mask per interlock pair
    size_t n_locks;
    uint32_t mask;           // every pin of the bank
    uint32_t active_low;     // pins whose relay is ON when the pin is low
    size_t n_relays;
    mp_obj_t keys[30];       // the names again, for a pointer-compare scan before hashing
    uint8_t pins[30];
} relay_bank_obj_t;

static inline uint32_t relay_pin_bit(relay_bank_obj_t *self, mp_obj_t name) {
    // Callers usually pass the very name objects the bank was built with: a pointer scan
    // of at most 30 entries is cheaper than hashing, and the dict lookup covers the rest.
    for (size_t i = 0; i < self->n_relays; i++) {
        if (self->keys[i] == name) {
            return 1u << self->pins[i];
        }
    }
    mp_map_elem_t *e = mp_map_lookup(mp_obj_dict_get_map(self->names), name, MP_MAP_LOOKUP);
    if (e == NULL) {
        if (mp_obj_is_str(name)) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("unknown relay %s"),
                mp_obj_str_get_str(name));
        }
        mp_raise_ValueError(MP_ERROR_TEXT("unknown relay"));
    }
    return 1u << MP_OBJ_SMALL_INT_VALUE(e->value);
}

// The write path's lookup: the pointer scan starts at the slot after the previous hit, so
// a changes dict built from the bank's names in bank order (a dict comprehension over the
// relay table) finds each name on the first compare.
static uint32_t relay_pin_bit_scan(relay_bank_obj_t *self, mp_obj_t name, size_t *cursor) {
    size_t n = self->n_relays;
    for (size_t i = 0; i < n; i++) {
        if (self->keys[i] == name) {
            *cursor = i + 1;
            return 1u << self->pins[i];
        }
    }
    return relay_pin_bit(self, name);
}

// RelayBank(pins, active_low, interlocks, allowed_mask, interlock_error)
static mp_obj_t relay_bank_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw,
    const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 5, 5, false);
    relay_bank_obj_t *self = mp_obj_malloc(relay_bank_obj_t, type);
    self->names = mp_obj_new_dict(0);
    self->mask = 0;
    self->active_low = 0;
    self->n_relays = 0;
    uint32_t allowed = (uint32_t)mp_obj_get_int_truncated(args[3]) & iotlib_board_gpio_mask;

    if (!mp_obj_is_type(args[0], &mp_type_dict)) {
        mp_raise_TypeError(MP_ERROR_TEXT("pins must be a dict"));
    }
    mp_map_t *pins = mp_obj_dict_get_map(args[0]);
    for (size_t i = 0; i < pins->alloc; i++) {
        if (!mp_map_slot_is_filled(pins, i)) {
            continue;
        }
        mp_obj_t name = pins->table[i].key;
        if (!mp_obj_is_str(name)) {
            mp_raise_TypeError(MP_ERROR_TEXT("relay names must be str"));
        }
        mp_int_t pin = mp_obj_get_int(pins->table[i].value);
        if (pin < 0 || pin > 29 || !(allowed & (1u << pin))) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("pin %d not allowed"), (int)pin);
        }
        if (self->mask & (1u << pin)) {
            mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("pin %d used twice"), (int)pin);
        }
        self->mask |= 1u << pin;
        self->keys[self->n_relays] = name;
        self->pins[self->n_relays++] = (uint8_t)pin;
        mp_obj_dict_store(self->names, name, MP_OBJ_NEW_SMALL_INT(pin));
    }

    mp_obj_iter_buf_t iter_buf;
    mp_obj_t iter = mp_getiter(args[1], &iter_buf);
    mp_obj_t item;
    while ((item = mp_iternext(iter)) != MP_OBJ_STOP_ITERATION) {
        self->active_low |= relay_pin_bit(self, item);
    }

    mp_obj_t lock_list = mp_obj_new_list(0, NULL);
    iter = mp_getiter(args[2], &iter_buf);
    while ((item = mp_iternext(iter)) != MP_OBJ_STOP_ITERATION) {
        mp_obj_t *pair;
        mp_obj_get_array_fixed_n(item, 2, &pair);
        mp_obj_list_append(lock_list, mp_obj_new_tuple(2, pair));
    }
    size_t n_locks;
    mp_obj_t *locks;
    mp_obj_list_get(lock_list, &n_locks, &locks);
    self->lock_names = mp_obj_new_tuple(n_locks, locks);
    self->n_locks = n_locks;
    self->lock_masks = m_new(uint32_t, n_locks ? n_locks : 1);
    for (size_t i = 0; i < n_locks; i++) {
        mp_obj_tuple_t *t = MP_OBJ_TO_PTR(locks[i]);
        self->lock_masks[i] = relay_pin_bit(self, t->items[0]) | relay_pin_bit(self, t->items[1]);
    }
    self->lock_error = args[4] == mp_const_none ? MP_OBJ_FROM_PTR(&mp_type_ValueError) : args[4];

    // Everything OFF before the drivers are enabled.
    iotlib_gpio_claim_outputs(self->mask, self->active_low);
    return MP_OBJ_FROM_PTR(self);
}

static uint32_t relay_on_state(relay_bank_obj_t *self) {
    return (iotlib_gpio_out_get() ^ self->active_low) & self->mask;
}

static NORETURN void relay_raise_interlock(relay_bank_obj_t *self, size_t i) {
    mp_obj_tuple_t *pair = MP_OBJ_TO_PTR(((mp_obj_tuple_t *)MP_OBJ_TO_PTR(self->lock_names))->items[i]);
    vstr_t msg;
    vstr_init(&msg, 64);
    vstr_printf(&msg, "interlock: %s and %s cannot both be on",
        mp_obj_str_get_str(pair->items[0]), mp_obj_str_get_str(pair->items[1]));
    nlr_raise(mp_call_function_1(self->lock_error, mp_obj_new_str_from_vstr(&msg)));
}

// Switch on `turn_on`, off `turn_off` (pin masks), in one register write, unless the
// result would break an interlock (then nothing changes).
static void relay_apply(relay_bank_obj_t *self, uint32_t turn_on, uint32_t turn_off) {
    uint32_t on = (relay_on_state(self) & ~turn_off) | turn_on;
    for (size_t i = 0; i < self->n_locks; i++) {
        if ((on & self->lock_masks[i]) == self->lock_masks[i]) {
            relay_raise_interlock(self, i);
        }
    }
    iotlib_gpio_out_put_masked(turn_on | turn_off, on ^ self->active_low);
}

// The pins a changes/states dict switches on (True or truthy) and off; ValueError names
// an unknown relay. The hot path of write(): one pass over the dict's filled slots, in
// registers (hence -O2 here while the image is built -Os).
__attribute__((optimize("O2")))
static uint32_t relay_masks(relay_bank_obj_t *self, mp_obj_t changes, uint32_t *turn_off) {
    if (!mp_obj_is_type(changes, &mp_type_dict)) {
        mp_raise_TypeError(MP_ERROR_TEXT("changes must be a dict"));
    }
    mp_map_t *map = mp_obj_dict_get_map(changes);
    const mp_map_elem_t *e = map->table;
    size_t left = map->used, cursor = 0, n = self->n_relays;
    uint32_t on = 0, off = 0;
    for (; left; e++) {
        mp_obj_t key = e->key;
        if (key == MP_OBJ_NULL || key == MP_OBJ_SENTINEL) {
            continue;
        }
        left--;
        uint32_t bit;
        if (cursor < n && self->keys[cursor] == key) {
            bit = 1u << self->pins[cursor++];
        } else {
            bit = relay_pin_bit_scan(self, key, &cursor);
        }
        mp_obj_t v = e->value;
        // True/False need no call; anything else goes through its truth value.
        if (v == mp_const_true || (v != mp_const_false && mp_obj_is_true(v))) {
            on |= bit;
        } else {
            off |= bit;
        }
    }
    *turn_off = off;
    return on;
}

// write(changes): changes maps relay name -> bool (True = ON). All or nothing.
static mp_obj_t relay_bank_write(mp_obj_t self_in, mp_obj_t changes) {
    relay_bank_obj_t *self = MP_OBJ_TO_PTR(self_in);
    uint32_t turn_off;
    uint32_t turn_on = relay_masks(self, changes, &turn_off);
    relay_apply(self, turn_on, turn_off);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(relay_bank_write_obj, relay_bank_write);

// apply_safe(states): exactly `states` (name -> bool), every relay not named OFF, in one
// write; an interlock violation raises and leaves the outputs as they were.
static mp_obj_t relay_bank_apply_safe(mp_obj_t self_in, mp_obj_t states) {
    relay_bank_obj_t *self = MP_OBJ_TO_PTR(self_in);
    uint32_t named_off;
    uint32_t turn_on = relay_masks(self, states, &named_off);
    relay_apply(self, turn_on, self->mask & ~turn_on);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_2(relay_bank_apply_safe_obj, relay_bank_apply_safe);

// all_off(): every relay OFF, in one write.
static mp_obj_t relay_bank_all_off(mp_obj_t self_in) {
    relay_bank_obj_t *self = MP_OBJ_TO_PTR(self_in);
    relay_apply(self, 0, self->mask);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(relay_bank_all_off_obj, relay_bank_all_off);

// read() -> dict relay name -> bool (ON), from the output register itself.
static mp_obj_t relay_bank_read(mp_obj_t self_in) {
    relay_bank_obj_t *self = MP_OBJ_TO_PTR(self_in);
    uint32_t on = relay_on_state(self);
    mp_map_t *names = mp_obj_dict_get_map(self->names);
    mp_obj_t out = mp_obj_new_dict(names->used);
    for (size_t i = 0; i < names->alloc; i++) {
        if (mp_map_slot_is_filled(names, i)) {
            uint32_t bit = 1u << MP_OBJ_SMALL_INT_VALUE(names->table[i].value);
            mp_obj_dict_store(out, names->table[i].key, mp_obj_new_bool(on & bit));
        }
    }
    return out;
}
static MP_DEFINE_CONST_FUN_OBJ_1(relay_bank_read_obj, relay_bank_read);

// mask() -> int: the GPIO bit mask of the bank's pins.
static mp_obj_t relay_bank_mask(mp_obj_t self_in) {
    relay_bank_obj_t *self = MP_OBJ_TO_PTR(self_in);
    return mp_obj_new_int_from_uint(self->mask);
}
static MP_DEFINE_CONST_FUN_OBJ_1(relay_bank_mask_obj, relay_bank_mask);

static const mp_rom_map_elem_t relay_bank_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_write), MP_ROM_PTR(&relay_bank_write_obj) },
    { MP_ROM_QSTR(MP_QSTR_read), MP_ROM_PTR(&relay_bank_read_obj) },
    { MP_ROM_QSTR(MP_QSTR_mask), MP_ROM_PTR(&relay_bank_mask_obj) },
    { MP_ROM_QSTR(MP_QSTR_apply_safe), MP_ROM_PTR(&relay_bank_apply_safe_obj) },
    { MP_ROM_QSTR(MP_QSTR_all_off), MP_ROM_PTR(&relay_bank_all_off_obj) },
};
static MP_DEFINE_CONST_DICT(relay_bank_locals, relay_bank_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(
    iotlib_relay_bank_type,
    MP_QSTR_RelayBank,
    MP_TYPE_FLAG_NONE,
    make_new, relay_bank_make_new,
    locals_dict, &relay_bank_locals
    );
