# Pure-Python LogRing: the same object as the C one in logring.c (the Logger's per-line path:
# level check, timestamp, the record framed into the RAM ring); the cases that are not the
# plain path go to the Logger's on_slow(level, msg, fields, n) exactly as from C, a full
# ring included (on_slow empties it, the record is framed again here).
from time import ticks_diff, ticks_ms

from iotlib._jsonlog_py import frame_at

SLOW_UNKNOWN_LEVEL = -1
SLOW_BAD_RECORD = -2  # a field name too long or nesting too deep: keep it truncated
SLOW_NOT_STR = -3
SLOW_RING_FULL = -4  # the record fits a line but not what is left of the ring
SLOW_WAKE_WRITER = -5  # the ring just reached wake_at: time to write it out
STAMP_REREAD_MS = 600000


class LogRing:
    def __init__(self, buf, line_bytes, levels, threshold, mask, clock, stamp_ms, on_slow):
        if type(buf) is not bytearray:
            raise TypeError("the ring must be a bytearray")
        if not isinstance(levels, dict):
            raise TypeError("levels must be a dict")
        self.buf = buf
        self.line_bytes = line_bytes
        self.levels = levels
        self.threshold = threshold
        self.mask = mask
        self.clock = clock
        self.stamp_ms = stamp_ms
        self.on_slow = on_slow
        self.stamp = None  # the last line's
        self._generation = None
        self._stamp_s = self._stamp_at = self._checked_at = 0
        self.used = self.last = self.lines = 0
        self.wake_at = len(buf) // 2  # fill level that wakes the Logger's writer

    def log(self, level, msg, fields=None):
        severity = self.levels.get(level)
        if severity is None:
            return self.on_slow(level, msg, fields, SLOW_UNKNOWN_LEVEL)
        if severity < self.threshold:
            return None
        if type(msg) is not str:
            return self.on_slow(level, msg, fields, SLOW_NOT_STR)
        self.stamp = self._stamp()
        n = self._frame(level, msg, fields)
        size = len(self.buf)
        if 0 <= n <= self.line_bytes and n <= size < self.used + n:
            self.on_slow(level, msg, fields, SLOW_RING_FULL)  # the Logger writes the ring out
            n = self._frame(level, msg, fields)
        if n < 0 or n > self.line_bytes or self.used + n > size:
            return self.on_slow(level, msg, fields, n)
        self.last = self.used
        self.used += n
        self.lines += 1
        if self.last < self.wake_at <= self.used:  # once per fill
            return self.on_slow(level, msg, fields, SLOW_WAKE_WRITER)
        return None

    def _stamp(self):
        """As logring.c: the clock read at the first line, when its generation changes
        (compared every stamp_ms) and every STAMP_REREAD_MS; seconds run on from ticks."""
        now = ticks_ms()
        if self.stamp is None or not self.stamp_ms or \
                ticks_diff(now, self._stamp_at) >= STAMP_REREAD_MS:
            self._read_clock(now)
        elif ticks_diff(now, self._checked_at) >= self.stamp_ms:
            self._checked_at = now
            if getattr(self.clock, "generation", None) != self._generation:
                self._read_clock(now)
        return self._stamp_s + ticks_diff(now, self._stamp_at) // 1000

    def _read_clock(self, now):
        self._stamp_s = self.clock.time()
        self._stamp_at = self._checked_at = now
        self._generation = getattr(self.clock, "generation", None)

    def _frame(self, level, msg, fields):
        try:
            return frame_at(self.buf, self.used, self.stamp, level, msg, fields, self.mask)
        except ValueError:
            return SLOW_BAD_RECORD
