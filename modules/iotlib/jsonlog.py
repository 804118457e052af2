# JSON log framing: one log record as one JSON line in a caller-owned bytearray.
# The C module frames it with no heap allocation; _jsonlog_py frames byte-identical
# lines in pure Python for a stock MicroPython.
try:
    from _iotlib import frame_into as _native_frame_into
    from _iotlib import frame_at as _native_frame_at
    from _iotlib import LogRing as _NativeLogRing

    NATIVE = True
except ImportError:
    _native_frame_into = _native_frame_at = _NativeLogRing = None
    NATIVE = False

from iotlib._jsonlog_py import frame_at as py_frame_at
from iotlib._jsonlog_py import frame_into as py_frame_into
from iotlib._logring_py import LogRing as PyLogRing

# frame_into(buf, ts, level, msg, fields, mask_keys) -> int
#   Writes {"ts":..,"level":..,"msg":..,<fields in dict order>}\n into buf and returns its
#   length. Values of keys in mask_keys become "***"; NaN and infinities become null.
#   ValueError("log record needs N bytes, buffer has M") when buf is too small (buf is
#   never written past its end); TypeError for a non-str key or an unsupported value.
frame_into = _native_frame_into or py_frame_into

# frame_at(buf, at, ts, level, msg, fields, mask_keys) -> int
#   The Logger's record: the same line as frame_into, but written at buf[at:] and with
#   nested dicts, lists and tuples in fields flattened to "a.b" / "a.0" keys. A name in
#   mask_keys (any iterable of str) equal to a field's own key or to its dotted name hides
#   that field's subtree as "***"; values of other types are written as their str().
#   Returns the record's length n; the record is in buf[at:at + n] only when it fits there
#   (a record that does not fit raises nothing and writes nothing past buf's end).
#   ValueError for a dotted name over 128 bytes or nesting deeper than 8 levels.
frame_at = _native_frame_at or py_frame_at

# LogRing(buf, line_bytes, levels, threshold, mask, clock, stamp_ms, on_slow)
#   The Logger's per-line path as one call, ring.log(level, msg, fields=None): the level's
#   severity from `levels` against `threshold`, the timestamp (clock.time(), read again only
#   after stamp_ms), the record framed by frame_at at buf[used:], then used/last/lines moved
#   on. Anything else calls on_slow(level, msg, fields, n) and returns what it returns:
#   n = -1 unknown level, -2 frame_at raised ValueError, -3 msg is not a str, otherwise the
#   record's length when it is longer than line_bytes or does not fit in the ring.
#   Attributes: used, last, lines, threshold (read/write), mask, stamp, buf.
LogRing = _NativeLogRing or PyLogRing
