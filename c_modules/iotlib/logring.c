// The Logger's per-line path in one C call: level check, timestamp, the record framed
// (flattened and masked, jsonlog.c) straight into the RAM ring, the ring's length moved on.
// Everything else (a record too long for a line, an unknown level, a non-str message) goes
// to the Logger's own Python `on_slow`, so this file holds no policy. A full ring asks
// on_slow to empty it (SLOW_RING_FULL) and the record is framed again here, once.
// iotlib._logring_py.LogRing is the same object in Python.
#include "py/runtime.h"
#include "py/mphal.h"
#include "py/nlr.h"
#include "py/objarray.h"
#include "iotlib.h"

// on_slow's `n` for the cases that are not a length
#define SLOW_UNKNOWN_LEVEL (-1)
#define SLOW_BAD_RECORD (-2) // a field name too long or nesting too deep: keep it truncated
#define SLOW_NOT_STR (-3)
#define SLOW_RING_FULL (-4) // the record fits a line but not what is left of the ring
#define SLOW_WAKE_WRITER (-5) // the ring just reached wake_at: time to write it out

typedef struct {
    mp_obj_base_t base;
    mp_obj_t buf;     // the ring (bytearray)
    mp_obj_t levels;  // dict: level name -> severity
    mp_obj_t mask;    // iterable of masked field names
    mp_obj_t clock;   // its time() stamps the lines
    mp_obj_t on_slow; // on_slow(level, msg, fields, n)
    mp_obj_t generation; // clock.generation at the last read (MP_OBJ_NULL: the clock has none)
    bool stamped;        // the clock was read at least once
    mp_uint_t stamp_s;   // the clock's seconds at stamp_at_ms
    mp_uint_t stamp_at_ms;
    mp_uint_t checked_ms; // when clock.generation was last compared
    mp_uint_t stamp_ms;  // how often clock.generation is compared; 0: the clock stamps every line
    mp_uint_t last_ts;   // the last line's stamp
    mp_int_t threshold;
    mp_int_t line_bytes;
    mp_int_t used;
    mp_int_t last; // offset of the last record
    mp_int_t lines;
    mp_int_t wake_at; // fill level that wakes the Logger's writer (half the ring)
} log_ring_t;

// LogRing(buf, line_bytes, levels, threshold, mask, clock, stamp_ms, on_slow)
static mp_obj_t log_ring_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw,
    const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 8, 8, false);
    if (!mp_obj_is_type(args[0], &mp_type_bytearray)) {
        mp_raise_TypeError(MP_ERROR_TEXT("the ring must be a bytearray"));
    }
    if (!mp_obj_is_dict_or_ordereddict(args[2])) {
        mp_raise_TypeError(MP_ERROR_TEXT("levels must be a dict"));
    }
    log_ring_t *self = mp_obj_malloc(log_ring_t, type);
    self->buf = args[0];
    self->line_bytes = mp_obj_get_int(args[1]);
    self->levels = args[2];
    self->threshold = mp_obj_get_int(args[3]);
    self->mask = args[4];
    self->clock = args[5];
    self->stamp_ms = mp_obj_get_int(args[6]);
    self->on_slow = args[7];
    self->generation = MP_OBJ_NULL;
    self->stamped = false;
    self->stamp_s = self->stamp_at_ms = self->checked_ms = self->last_ts = 0;
    self->used = self->last = self->lines = 0;
    self->wake_at = ((mp_obj_array_t *)MP_OBJ_TO_PTR(args[0]))->len / 2;
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t slow(log_ring_t *self, mp_obj_t level, mp_obj_t msg, mp_obj_t fields, mp_int_t n) {
    mp_obj_t args[4] = { level, msg, fields, MP_OBJ_NEW_SMALL_INT(n) };
    return mp_call_function_n_kw(self->on_slow, 4, 0, args);
}

// A line's stamp (seconds): the clock is read at the first line, whenever its `generation`
// changes (an SNTP answer; compared every stamp_ms) and at least every STAMP_REREAD_MS; in
// between the seconds run on from ticks_ms. So a line reads no Python int: the clock's is
// past the small-int range on the chip and would cost heap on every read.
#define STAMP_REREAD_MS (600000u)

static mp_obj_t log_ring_clock_generation(log_ring_t *self) {
    mp_obj_t dest[2] = { MP_OBJ_NULL, MP_OBJ_NULL };
    mp_load_method_maybe(self->clock, MP_QSTR_generation, dest); // no exception when absent
    return dest[0];
}

static void log_ring_read_clock(log_ring_t *self, mp_uint_t now) {
    mp_obj_t dest[2];
    mp_load_method(self->clock, MP_QSTR_time, dest);
    self->stamp_s = (mp_uint_t)mp_obj_get_int_truncated(mp_call_method_n_kw(0, 0, dest));
    self->stamp_at_ms = self->checked_ms = now;
    self->generation = log_ring_clock_generation(self);
    self->stamped = true;
}

static mp_uint_t log_ring_stamp(log_ring_t *self) {
    #if MICROPY_PY_TIME
    mp_uint_t now = mp_hal_ticks_ms();
    if (!self->stamped || self->stamp_ms == 0 || now - self->stamp_at_ms >= STAMP_REREAD_MS) {
        log_ring_read_clock(self, now);
    } else if (now - self->checked_ms >= self->stamp_ms) {
        self->checked_ms = now;
        if (log_ring_clock_generation(self) != self->generation) {
            log_ring_read_clock(self, now);
        }
    }
    return self->stamp_s + (now - self->stamp_at_ms) / 1000;
    #else
    log_ring_read_clock(self, 0); // a port without ticks (qemu): the clock stamps every line
    return self->stamp_s;
    #endif
}

// The record framed at the ring's end: its length (written only when it fits), or
// SLOW_BAD_RECORD for what the framing refuses with ValueError.
static mp_int_t log_ring_frame(log_ring_t *self, mp_obj_t level, mp_obj_t msg, mp_obj_t fields) {
    mp_int_t n;
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        n = iotlib_frame_record_at(self->buf, self->used, MP_OBJ_NULL, self->last_ts, level,
            msg, fields, self->mask);
        nlr_pop();
    } else {
        mp_obj_base_t *exc = nlr.ret_val;
        if (!mp_obj_is_subclass_fast(MP_OBJ_FROM_PTR(exc->type),
            MP_OBJ_FROM_PTR(&mp_type_ValueError))) {
            nlr_jump(nlr.ret_val);
        }
        n = SLOW_BAD_RECORD;
    }
    return n;
}

// log(level, msg, fields=None): one record into the ring (or to on_slow)
static mp_obj_t log_ring_log(size_t n_args, const mp_obj_t *args, mp_map_t *kw_args) {
    log_ring_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_obj_t level = args[1], msg = args[2];
    mp_obj_t fields = mp_const_none;
    if (n_args > 4) {
        mp_raise_TypeError(MP_ERROR_TEXT("log() takes level, msg and fields"));
    }
    if (n_args == 4) {
        fields = args[3];
    }
    if (kw_args->used) { // fields=...: the only keyword (a plain map lookup, no parser)
        mp_map_elem_t *kw = mp_map_lookup(kw_args, MP_OBJ_NEW_QSTR(MP_QSTR_fields), MP_MAP_LOOKUP);
        if (kw == NULL || kw_args->used > 1 || n_args == 4) {
            mp_raise_TypeError(MP_ERROR_TEXT("log() takes level, msg and fields"));
        }
        fields = kw->value;
    }
    mp_map_elem_t *severity = mp_map_lookup(mp_obj_dict_get_map(self->levels), level,
        MP_MAP_LOOKUP);
    if (severity == NULL) {
        return slow(self, level, msg, fields, SLOW_UNKNOWN_LEVEL);
    }
    if (mp_obj_get_int(severity->value) < self->threshold) {
        return mp_const_none;
    }
    if (!mp_obj_is_str(msg)) {
        return slow(self, level, msg, fields, SLOW_NOT_STR);
    }
    self->last_ts = log_ring_stamp(self);
    mp_int_t n = log_ring_frame(self, level, msg, fields);
    mp_obj_array_t *ring = MP_OBJ_TO_PTR(self->buf);
    if (n >= 0 && n <= self->line_bytes && (size_t)n <= ring->len
        && (size_t)(self->used + n) > ring->len) {
        slow(self, level, msg, fields, SLOW_RING_FULL); // the Logger writes the ring out
        n = log_ring_frame(self, level, msg, fields);
    }
    if (n < 0 || n > self->line_bytes || (size_t)(self->used + n) > ring->len) {
        return slow(self, level, msg, fields, n);
    }
    self->last = self->used;
    self->used += n;
    self->lines++;
    if (self->last < self->wake_at && self->used >= self->wake_at) {
        // once per fill: the writer empties the ring while the caller is elsewhere
        return slow(self, level, msg, fields, SLOW_WAKE_WRITER);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_KW(log_ring_log_obj, 3, log_ring_log);

// Attributes the Logger reads and sets: used, last, lines, threshold, wake_at, mask, stamp, buf.
static void log_ring_attr(mp_obj_t self_in, qstr attr, mp_obj_t *dest) {
    log_ring_t *self = MP_OBJ_TO_PTR(self_in);
    mp_int_t *field = NULL;
    switch (attr) {
        case MP_QSTR_used:
            field = &self->used;
            break;
        case MP_QSTR_last:
            field = &self->last;
            break;
        case MP_QSTR_lines:
            field = &self->lines;
            break;
        case MP_QSTR_threshold:
            field = &self->threshold;
            break;
        case MP_QSTR_wake_at:
            field = &self->wake_at;
            break;
        default:
            break;
    }
    if (dest[0] == MP_OBJ_NULL) { // load
        if (field != NULL) {
            dest[0] = mp_obj_new_int(*field);
        } else if (attr == MP_QSTR_mask) {
            dest[0] = self->mask;
        } else if (attr == MP_QSTR_buf) {
            dest[0] = self->buf;
        } else if (attr == MP_QSTR_stamp) { // the last line's (Logger's slow path)
            dest[0] = self->stamped ? mp_obj_new_int_from_uint(self->last_ts) : mp_const_none;
        } else {
            dest[1] = MP_OBJ_SENTINEL; // methods: look in the locals dict
        }
    } else if (dest[0] == MP_OBJ_SENTINEL && dest[1] != MP_OBJ_NULL) { // store
        if (field != NULL) {
            mp_int_t v = mp_obj_get_int(dest[1]);
            if (field == &self->used || field == &self->last) {
                mp_obj_array_t *ring = MP_OBJ_TO_PTR(self->buf);
                if (v < 0 || (size_t)v > ring->len) {
                    mp_raise_ValueError(MP_ERROR_TEXT("offset outside the ring"));
                }
            }
            *field = v;
            dest[0] = MP_OBJ_NULL;
        } else if (attr == MP_QSTR_mask) {
            self->mask = dest[1];
            dest[0] = MP_OBJ_NULL;
        }
    }
}

static const mp_rom_map_elem_t log_ring_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_log), MP_ROM_PTR(&log_ring_log_obj) },
};
static MP_DEFINE_CONST_DICT(log_ring_locals, log_ring_locals_table);

MP_DEFINE_CONST_OBJ_TYPE(
    iotlib_log_ring_type,
    MP_QSTR_LogRing,
    MP_TYPE_FLAG_NONE,
    make_new, log_ring_make_new,
    attr, log_ring_attr,
    locals_dict, &log_ring_locals
    );
