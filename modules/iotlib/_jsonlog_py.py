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
