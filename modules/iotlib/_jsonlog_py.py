# Pure-Python JSON log framing: the same bytes as the C frame_into (strings go through
# MicroPython's json.dumps, whose escaping the C side copies).
from json import dumps


def _value(v):
    if isinstance(v, str):
        return dumps(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v - v != 0:  # NaN or an infinity: JSON has neither
            return "null"
        return repr(v)
    raise TypeError("log values must be str, int, float, bool or None")


def frame_into(buf, ts, level, msg, fields, mask_keys=None):
    if fields is not None and not isinstance(fields, dict):
        raise TypeError("fields must be a dict")
    parts = ['{"ts":', _value(ts), ',"level":', _value(level), ',"msg":', _value(msg)]
    if fields:
        for key, v in fields.items():
            if not isinstance(key, str):
                raise TypeError("log field keys must be str")
            masked = mask_keys is not None and key in mask_keys
            parts.append(",%s:%s" % (dumps(key), '"***"' if masked else _value(v)))
    parts.append("}\n")
    line = "".join(parts).encode()
    n = len(line)
    if n > len(buf):
        raise ValueError("log record needs %d bytes, buffer has %d" % (n, len(buf)))
    buf[:n] = line
    return n


# ---- frame_at: the Logger's record, nested fields flattened and masked (jsonlog.c) --------
NAME_MAX = 128  # bytes in a dotted field name
DEPTH_MAX = 8  # nesting levels below the record's fields


def _scalar(v):
    t = type(v)
    if t is str or v is None or t is bool or t is int or t is float:
        return _value(v)
    return dumps(str(v))


def _flat(parts, items, prefix, masked, depth):
    if depth > DEPTH_MAX:
        raise ValueError("log fields nested deeper than %d levels" % DEPTH_MAX)
    for key, value in items:
        key = str(key)
        name = prefix + key
        if len(name.encode()) > NAME_MAX:
            raise ValueError("log field name longer than %d bytes" % NAME_MAX)
        t = type(value)
        if key in masked or name in masked:
            parts.append(',%s:"***"' % dumps(name))
        elif t is dict:
            _flat(parts, value.items(), name + ".", masked, depth + 1)
        elif t is list or t is tuple:
            _flat(parts, enumerate(value), name + ".", masked, depth + 1)
        else:
            parts.append(",%s:%s" % (dumps(name), _scalar(value)))


def frame_at(buf, at, ts, level, msg, fields, mask_keys):
    if at < 0 or at > len(buf):
        raise ValueError("offset %d outside the buffer (%d bytes)" % (at, len(buf)))
    if fields is not None and type(fields) is not dict:
        raise TypeError("fields must be a dict")
    parts = ['{"ts":', _value(ts), ',"level":', _value(level), ',"msg":', _value(msg)]
    if fields is not None:
        _flat(parts, fields.items(), "", () if mask_keys is None else mask_keys, 1)
    parts.append("}\n")
    line = "".join(parts).encode()
    n = len(line)
    if at + n <= len(buf):
        buf[at:at + n] = line
    return n
