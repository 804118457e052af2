# JSON log framing: one log record as one JSON line in a caller-owned bytearray.
# The C module frames it with no heap allocation; _jsonlog_py frames byte-identical
# lines in pure Python for a stock MicroPython.
try:
    from _iotlib import frame_into as _native_frame_into

    NATIVE = True
except ImportError:
    _native_frame_into = None
    NATIVE = False

from iotlib._jsonlog_py import frame_into as py_frame_into

# frame_into(buf, ts, level, msg, fields, mask_keys) -> int
#   Writes {"ts":..,"level":..,"msg":..,<fields in dict order>}\n into buf and returns its
#   length. Values of keys in mask_keys become "***"; NaN and infinities become null.
#   ValueError("log record needs N bytes, buffer has M") when buf is too small (buf is
#   never written past its end); TypeError for a non-str key or an unsupported value.
frame_into = _native_frame_into or py_frame_into
