// JSON log framing: one record as one JSON line in a caller-owned bytearray, with no
// heap allocation. Escaping matches MicroPython's json.dumps byte for byte, so the
// pure-Python fallback (which uses json.dumps for strings) frames identical lines.
#include <math.h>
#include <string.h>

#include "py/runtime.h"
#include "py/objstr.h"
#include "py/objint.h"
#include "py/objarray.h"
#include "py/formatfloat.h"
#include "iotlib.h"

// A bounded printer: counts every byte, stores only what fits, never past the end.
typedef struct {
    mp_print_t print;
    byte *buf;
    size_t cap;
    size_t len;
} json_writer_t;

static void jw_strn(void *data, const char *s, size_t n) {
    json_writer_t *w = data;
    if (w->len + n <= w->cap) {
        memcpy(w->buf + w->len, s, n);
    }
    w->len += n;
}

// One byte, without the memcpy call (separators and quotes: several per field).
static inline void jw_byte(json_writer_t *w, char c) {
    if (w->len < w->cap) {
        w->buf[w->len] = (byte)c;
    }
    w->len++;
}

// String literals: their length is known at compile time, no strlen.
#define jw_lit(w, s) jw_strn((w), (s), sizeof(s) - 1)

static void jw_str(json_writer_t *w, mp_obj_t str) {
    static const char hex[] = "0123456789abcdef";
    GET_STR_DATA_LEN(str, s, n);
    jw_byte(w, '"');
    size_t run = 0; // bytes not yet written that need no escape: copied in one go
    for (size_t i = 0; i < n; i++) {
        byte c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        jw_strn(w, (const char *)s + i - run, run);
        run = 0;
        char esc[6] = { '\\', (char)c };
        size_t esc_len = 2;
        if (c == '\n') {
            esc[1] = 'n';
        } else if (c == '\r') {
            esc[1] = 'r';
        } else if (c == '\t') {
            esc[1] = 't';
        } else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
        }
        jw_strn(w, esc, esc_len);
    }
    jw_strn(w, (const char *)s + n - run, run);
    jw_byte(w, '"');
}

// Timestamps are past the small-int range on 32-bit ports: format any int that fits a
// machine word here, without the generic printer (and without raising on overflow).
static bool int_fits_word(mp_obj_t v, mp_int_t *out) {
    if (mp_obj_is_small_int(v)) {
        *out = MP_OBJ_SMALL_INT_VALUE(v);
        return true;
    }
    #if MICROPY_LONGINT_IMPL == MICROPY_LONGINT_IMPL_MPZ
    return mpz_as_int_checked(&((mp_obj_int_t *)MP_OBJ_TO_PTR(v))->mpz, out);
    #else
    return false;
    #endif
}

static void jw_int(json_writer_t *w, mp_int_t i) {
    char digits[24];
    char *p = digits + sizeof(digits);
    mp_uint_t u = i < 0 ? -(mp_uint_t)i : (mp_uint_t)i;
    do {
        *--p = '0' + u % 10;
        u /= 10;
    } while (u);
    if (i < 0) {
        *--p = '-';
    }
    jw_strn(w, p, digits + sizeof(digits) - p);
}

#if MICROPY_PY_BUILTINS_FLOAT
// A finite float exactly as repr() prints it (py/objfloat.c float_print: the same
// mp_format_float call and precision, then ".0" when there is no '.' or exponent), but
// straight into a stack buffer: no print-helper dispatch, no strlen, one scan.
static void jw_float(json_writer_t *w, mp_float_t f) {
    #if MICROPY_FLOAT_IMPL == MICROPY_FLOAT_IMPL_FLOAT
    char buf[16];
    #if MICROPY_OBJ_REPR == MICROPY_OBJ_REPR_C
    const int precision = 6;
    #else
    const int precision = 7;
    #endif
    #else
    char buf[32];
    const int precision = 16;
    #endif
    int n = mp_format_float(f, buf, sizeof(buf), 'g', precision, '\0');
    jw_strn(w, buf, n);
    for (int i = 0; i < n; i++) {
        if (buf[i] == '.' || buf[i] == 'e') {
            return;
        }
    }
    jw_lit(w, ".0");
}
#endif

static void jw_value(json_writer_t *w, mp_obj_t v) {
    if (mp_obj_is_str(v)) {
        jw_str(w, v);
    } else if (v == mp_const_none) {
        jw_lit(w, "null");
    } else if (mp_obj_is_bool(v)) {
        if (v == mp_const_true) {
            jw_lit(w, "true");
        } else {
            jw_lit(w, "false");
        }
    } else if (mp_obj_is_int(v)) {
        mp_int_t i;
        if (int_fits_word(v, &i)) {
            jw_int(w, i);
        } else {
            mp_obj_print_helper(&w->print, v, PRINT_STR);
        }
    #if MICROPY_PY_BUILTINS_FLOAT
    } else if (mp_obj_is_float(v)) {
        mp_float_t f = mp_obj_float_get(v);
        if (isnan(f) || isinf(f)) {
            jw_lit(w, "null"); // JSON has no NaN or Infinity
        } else {
            jw_float(w, f);
        }
    #endif
    } else {
        mp_raise_TypeError(MP_ERROR_TEXT("log values must be str, int, float, bool or None"));
    }
}

static bool is_masked(mp_obj_t mask_keys, mp_obj_t key) {
    if (mask_keys == mp_const_none) {
        return false;
    }
    if (mp_obj_is_type(mask_keys, &mp_type_tuple) || mp_obj_is_type(mask_keys, &mp_type_list)) {
        // The usual shape: a few names, scanned without the generic `in` dispatch.
        size_t n;
        mp_obj_t *items;
        mp_obj_get_array(mask_keys, &n, &items);
        for (size_t i = 0; i < n; i++) {
            mp_obj_t k = items[i];
            if (k == key) {
                return true;
            }
            // Two interned names that are not the same object differ: no call needed.
            if (!(mp_obj_is_qstr(k) && mp_obj_is_qstr(key)) && mp_obj_equal(k, key)) {
                return true;
            }
        }
        return false;
    }
    return mp_obj_is_true(mp_binary_op(MP_BINARY_OP_CONTAINS, mask_keys, key));
}

// frame_into(buf, ts, level, msg, fields[, mask_keys]) -> int bytes written
static mp_obj_t iotlib_frame_into(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t bi;
    if (mp_obj_is_type(args[0], &mp_type_bytearray)) {
        // The usual buffer: read its storage directly, skipping the buffer protocol call.
        mp_obj_array_t *ba = MP_OBJ_TO_PTR(args[0]);
        bi.buf = ba->items;
        bi.len = ba->len;
    } else {
        mp_get_buffer_raise(args[0], &bi, MP_BUFFER_WRITE);
    }
    mp_obj_t fields = args[4];
    mp_obj_t mask_keys = n_args > 5 ? args[5] : mp_const_none;
    if (fields != mp_const_none && !mp_obj_is_type(fields, &mp_type_dict)) {
        mp_raise_TypeError(MP_ERROR_TEXT("fields must be a dict"));
    }
    json_writer_t w = { { NULL, jw_strn }, bi.buf, bi.len, 0 };
    w.print.data = &w;

    jw_lit(&w, "{\"ts\":");
    jw_value(&w, args[1]);
    jw_lit(&w, ",\"level\":");
    jw_value(&w, args[2]);
    jw_lit(&w, ",\"msg\":");
    jw_value(&w, args[3]);
    if (fields != mp_const_none) {
        mp_map_t *map = mp_obj_dict_get_map(fields);
        for (size_t i = 0; i < map->alloc; i++) {
            if (!mp_map_slot_is_filled(map, i)) {
                continue;
            }
            mp_obj_t key = map->table[i].key;
            if (!mp_obj_is_str(key)) {
                mp_raise_TypeError(MP_ERROR_TEXT("log field keys must be str"));
            }
            jw_byte(&w, ',');
            jw_str(&w, key);
            jw_byte(&w, ':');
            if (is_masked(mask_keys, key)) {
                jw_lit(&w, "\"***\"");
            } else {
                jw_value(&w, map->table[i].value);
            }
        }
    }
    jw_lit(&w, "}\n");
    if (w.len > w.cap) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("log record needs %u bytes, buffer has %u"),
            (unsigned)w.len, (unsigned)w.cap);
    }
    return MP_OBJ_NEW_SMALL_INT(w.len);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(iotlib_frame_into_obj, 5, 6, iotlib_frame_into);
