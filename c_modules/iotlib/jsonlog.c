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

// The bytes of one JSON string's body (no quotes), escaped as json.dumps escapes them.
static void jw_escaped(json_writer_t *w, const byte *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
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
}

static void jw_strbytes(json_writer_t *w, const byte *s, size_t n) {
    jw_byte(w, '"');
    jw_escaped(w, s, n);
    jw_byte(w, '"');
}

static void jw_str(json_writer_t *w, mp_obj_t str) {
    GET_STR_DATA_LEN(str, s, n);
    jw_strbytes(w, s, n);
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

static void jw_uint_signed(json_writer_t *w, mp_uint_t u, bool negative) {
    char digits[24];
    char *p = digits + sizeof(digits);
    do {
        *--p = '0' + u % 10;
        u /= 10;
    } while (u);
    if (negative) {
        *--p = '-';
    }
    jw_strn(w, p, digits + sizeof(digits) - p);
}

static void jw_int(json_writer_t *w, mp_int_t i) {
    jw_uint_signed(w, i < 0 ? -(mp_uint_t)i : (mp_uint_t)i, i < 0);
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

static void get_line_buffer(mp_obj_t obj, mp_buffer_info_t *bi) {
    if (mp_obj_is_type(obj, &mp_type_bytearray)) {
        // The usual buffer: read its storage directly, skipping the buffer protocol call.
        mp_obj_array_t *ba = MP_OBJ_TO_PTR(obj);
        bi->buf = ba->items;
        bi->len = ba->len;
    } else {
        mp_get_buffer_raise(obj, bi, MP_BUFFER_WRITE);
    }
}

// ts: an object, or MP_OBJ_NULL for the seconds in ts_s (the log ring's own stamp: an
// int object past the small-int range would cost heap per line)
static void jw_head(json_writer_t *w, mp_obj_t ts, mp_uint_t ts_s, mp_obj_t level, mp_obj_t msg) {
    jw_lit(w, "{\"ts\":");
    if (ts == MP_OBJ_NULL) {
        jw_uint_signed(w, ts_s, false);
    } else {
        jw_value(w, ts);
    }
    jw_lit(w, ",\"level\":");
    jw_value(w, level);
    jw_lit(w, ",\"msg\":");
    jw_value(w, msg);
}

// frame_into(buf, ts, level, msg, fields[, mask_keys]) -> int bytes written
static mp_obj_t iotlib_frame_into(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t bi;
    get_line_buffer(args[0], &bi);
    mp_obj_t fields = args[4];
    mp_obj_t mask_keys = n_args > 5 ? args[5] : mp_const_none;
    if (fields != mp_const_none && !mp_obj_is_type(fields, &mp_type_dict)) {
        mp_raise_TypeError(MP_ERROR_TEXT("fields must be a dict"));
    }
    json_writer_t w = { { NULL, jw_strn }, bi.buf, bi.len, 0 };
    w.print.data = &w;

    jw_head(&w, args[1], 0, args[2], args[3]);
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

// ---- frame_at: the Logger's record, nested fields flattened and masked on the way ---------
// Nested dicts, lists and tuples become "a.b" / "a.0" keys, written straight into the line
// (no flattened dict in between); a mask name equal to a field's own key or to its full
// dotted name hides that field's whole subtree as "***". Any other value is written as its
// str(). _jsonlog_py.frame_at is the same rule in Python, byte for byte.
#define FLAT_NAME_MAX 128 // bytes in a dotted field name
#define FLAT_DEPTH_MAX 8  // nesting levels below the record's fields

typedef struct {
    json_writer_t w;
    mp_print_t escaped; // prints into the line as the body of a JSON string
    mp_obj_t mask_keys;
    char name[FLAT_NAME_MAX + 1]; // the dotted name being written, room for one more '.'
} record_t;

typedef struct {
    mp_print_t print;
    char *buf;
    size_t cap;
    size_t len;
} name_writer_t;

static void escaped_strn(void *data, const char *s, size_t n) {
    jw_escaped(data, (const byte *)s, n);
}

static void name_strn(void *data, const char *s, size_t n) {
    name_writer_t *nw = data;
    if (nw->len + n <= nw->cap) {
        memcpy(nw->buf + nw->len, s, n);
    }
    nw->len += n;
}

static bool mask_entry_equals(mp_obj_t entry, const char *s, size_t n) {
    if (!mp_obj_is_str(entry)) {
        return false;
    }
    GET_STR_DATA_LEN(entry, e, en);
    return en == n && memcmp(e, s, n) == 0;
}

// key in mask_keys or name in mask_keys, comparing bytes (a set is iterated on the stack).
static bool flat_masked(record_t *r, size_t prefix_len, size_t name_len) {
    mp_obj_t mask = r->mask_keys;
    if (mask == mp_const_none) {
        return false;
    }
    const char *key = r->name + prefix_len;
    size_t key_len = name_len - prefix_len;
    if (mp_obj_is_type(mask, &mp_type_tuple) || mp_obj_is_type(mask, &mp_type_list)) {
        size_t n;
        mp_obj_t *items;
        mp_obj_get_array(mask, &n, &items);
        for (size_t i = 0; i < n; i++) {
            if (mask_entry_equals(items[i], key, key_len)
                || (prefix_len && mask_entry_equals(items[i], r->name, name_len))) {
                return true;
            }
        }
        return false;
    }
    mp_obj_iter_buf_t iter_buf;
    mp_obj_t iter = mp_getiter(mask, &iter_buf);
    mp_obj_t entry;
    while ((entry = mp_iternext(iter)) != MP_OBJ_STOP_ITERATION) {
        if (mask_entry_equals(entry, key, key_len)
            || (prefix_len && mask_entry_equals(entry, r->name, name_len))) {
            return true;
        }
    }
    return false;
}

static void flat_value(record_t *r, mp_obj_t v) {
    if (mp_obj_is_str(v) || v == mp_const_none || mp_obj_is_bool(v) || mp_obj_is_int(v)
        #if MICROPY_PY_BUILTINS_FLOAT
        || mp_obj_is_float(v)
        #endif
        ) {
        jw_value(&r->w, v);
    } else {
        jw_byte(&r->w, '"');
        mp_obj_print_helper(&r->escaped, v, PRINT_STR);
        jw_byte(&r->w, '"');
    }
}

static void flat_container(record_t *r, mp_obj_t container, size_t prefix_len, int depth);

// One field whose key (str() of it) is already in r->name at prefix_len..name_len.
static void flat_field(record_t *r, size_t prefix_len, size_t name_len, mp_obj_t value, int depth) {
    if (name_len > FLAT_NAME_MAX) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("log field name longer than %d bytes"), FLAT_NAME_MAX);
    }
    if (flat_masked(r, prefix_len, name_len)) {
        jw_byte(&r->w, ',');
        jw_strbytes(&r->w, (const byte *)r->name, name_len);
        jw_lit(&r->w, ":\"***\"");
    } else if (mp_obj_is_exact_type(value, &mp_type_dict) || mp_obj_is_type(value, &mp_type_list)
               || mp_obj_is_type(value, &mp_type_tuple)) {
        r->name[name_len] = '.';
        flat_container(r, value, name_len + 1, depth + 1);
    } else {
        jw_byte(&r->w, ',');
        jw_strbytes(&r->w, (const byte *)r->name, name_len);
        jw_byte(&r->w, ':');
        flat_value(r, value);
    }
}

// str(key) into r->name at prefix_len; returns the name's length (may exceed the buffer).
static size_t flat_key(record_t *r, size_t prefix_len, mp_obj_t key) {
    if (mp_obj_is_str(key)) {
        GET_STR_DATA_LEN(key, k, kn);
        if (prefix_len + kn <= FLAT_NAME_MAX) {
            memcpy(r->name + prefix_len, k, kn);
        }
        return prefix_len + kn;
    }
    size_t room = prefix_len < FLAT_NAME_MAX ? FLAT_NAME_MAX - prefix_len : 0;
    name_writer_t nw = { { NULL, name_strn }, r->name + prefix_len, room, 0 };
    nw.print.data = &nw;
    if (mp_obj_is_small_int(key)) {
        mp_printf(&nw.print, "%d", (int)MP_OBJ_SMALL_INT_VALUE(key));
    } else {
        mp_obj_print_helper(&nw.print, key, PRINT_STR);
    }
    return prefix_len + nw.len;
}

static void flat_container(record_t *r, mp_obj_t container, size_t prefix_len, int depth) {
    if (depth > FLAT_DEPTH_MAX) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("log fields nested deeper than %d levels"), FLAT_DEPTH_MAX);
    }
    if (mp_obj_is_exact_type(container, &mp_type_dict)) {
        mp_map_t *map = mp_obj_dict_get_map(container);
        for (size_t i = 0; i < map->alloc; i++) {
            if (mp_map_slot_is_filled(map, i)) {
                size_t name_len = flat_key(r, prefix_len, map->table[i].key);
                flat_field(r, prefix_len, name_len, map->table[i].value, depth);
            }
        }
    } else {
        size_t n;
        mp_obj_t *items;
        mp_obj_get_array(container, &n, &items);
        for (size_t i = 0; i < n; i++) {
            size_t name_len = flat_key(r, prefix_len, MP_OBJ_NEW_SMALL_INT(i));
            flat_field(r, prefix_len, name_len, items[i], depth);
        }
    }
}

// The record at buf[at:]; its length (the bytes are there only when at + length fits).
mp_int_t iotlib_frame_record_at(mp_obj_t buf, mp_int_t at, mp_obj_t ts, mp_uint_t ts_s,
    mp_obj_t level, mp_obj_t msg, mp_obj_t fields, mp_obj_t mask_keys) {
    mp_buffer_info_t bi;
    get_line_buffer(buf, &bi);
    if (at < 0 || (size_t)at > bi.len) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("offset %d outside the buffer (%u bytes)"), (int)at, (unsigned)bi.len);
    }
    if (fields != mp_const_none && !mp_obj_is_exact_type(fields, &mp_type_dict)) {
        mp_raise_TypeError(MP_ERROR_TEXT("fields must be a dict"));
    }
    record_t r;
    r.w = (json_writer_t) { { NULL, jw_strn }, (byte *)bi.buf + at, bi.len - at, 0 };
    r.w.print.data = &r.w;
    r.escaped = (mp_print_t) { &r.w, escaped_strn };
    r.mask_keys = mask_keys;
    jw_head(&r.w, ts, ts_s, level, msg);
    if (fields != mp_const_none) {
        flat_container(&r, fields, 0, 1);
    }
    jw_lit(&r.w, "}\n");
    return r.w.len;
}

// frame_at(buf, at, ts, level, msg, fields, mask_keys) -> int bytes the record needs
//   The record goes to buf[at:at + n] when it fits there; nothing is ever written past
//   buf's end, and a record that does not fit only returns its length (no exception, so
//   the Logger's full-ring path allocates nothing either).
static mp_obj_t iotlib_frame_at(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    return MP_OBJ_NEW_SMALL_INT(iotlib_frame_record_at(args[0], mp_obj_get_int(args[1]),
        args[2], 0, args[3], args[4], args[5], args[6]));
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(iotlib_frame_at_obj, 7, 7, iotlib_frame_at);
