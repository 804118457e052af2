# Structured JSON-line logging: records are framed (by the C module when present) into a
# preallocated RAM ring and written to flash in batches to spare the flash, by a writer task
# the ring wakes when it is half full (the caller does not wait for flash); the file rotates
# by size and old files are dropped by count and age. Masked fields are replaced with "***"
# wherever they appear in a record, nested or not.
import asyncio
import os
from time import ticks_diff, ticks_ms

from iotlib import jsonlog
from iotlib._logring_py import (SLOW_NOT_STR, SLOW_RING_FULL, SLOW_UNKNOWN_LEVEL,
                                SLOW_WAKE_WRITER)
from iotlib.clock import Clock
from iotlib.storage import exists, makedirs, remove, sync
from iotlib.task import BackgroundTask

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
MASK = "***"
TRUNCATED = {"truncated": True}
# The ring reads the wall clock at its first line, when the clock's generation changes (an
# SNTP answer: compared every STAMP_MS) and every 10 minutes, and counts the seconds on from
# ticks in between: the clock's int is past the small-int range on the RP2040, so reading it
# per line would allocate per line.
STAMP_MS = 250


def flatten(fields, masked, out=None, prefix=""):
    """Nested dicts and lists become "a.b" / "a.0" keys; a masked name hides its whole subtree.
    (The Logger flattens inside jsonlog.frame_at instead; this dict form is for callers that
    add keys before framing, such as the audit trail.)"""
    if out is None:
        out = {}
    items = fields.items() if isinstance(fields, dict) else enumerate(fields)
    for key, value in items:
        key = str(key)
        name = prefix + key
        if key in masked or name in masked:
            out[name] = MASK
        elif isinstance(value, (dict, list, tuple)):
            flatten(value, masked, out, name + ".")
        elif value is None or isinstance(value, (str, int, float, bool)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


def _merge(fields, kw):
    if not kw:
        return fields
    return dict(fields, **kw) if fields else kw


class Logger:
    def __init__(self, mask_fields=None, level="INFO", directory="logs", name="app.log",
                 max_bytes=16384, keep=3, max_age_s=0, ring_bytes=2048, line_bytes=384,
                 flush_ms=5000, clock=None, echo=False, native=True, stamp_ms=STAMP_MS):
        if mask_fields is not None and not isinstance(mask_fields, (list, tuple, set)):
            raise TypeError("Logger: mask_fields must be a list of field names, e.g. "
                            "[\"token\"], not %r" % (mask_fields,))
        self.mask_fields = set(mask_fields or ())
        self.level = LEVELS[level]
        self.directory = directory
        self.path = directory + "/" + name
        self.max_bytes = max_bytes
        self.keep = keep  # rotated files kept besides the live one
        self.max_age_s = max_age_s  # 0: no age limit
        self.flush_ms = flush_ms
        self.clock = clock or Clock()
        self.echo = echo
        # native=False: the pure-Python ring and framing (same bytes), for comparison;
        # stamp_ms=0: the clock stamps every line (a test's fixed clock)
        self._frame = jsonlog.frame_at if native else jsonlog.py_frame_at
        ring_type = jsonlog.LogRing if native else jsonlog.PyLogRing
        self.line_bytes = line_bytes  # longest record kept whole
        # records are framed straight into the ring (one C call per line, see log())
        self._ring = ring_type(bytearray(ring_bytes), line_bytes, LEVELS, self.level,
                               self.mask_fields, self.clock, stamp_ms, self._slow)
        if not echo:
            # The ring's bound method itself: logger.log(...) goes straight into C, with no
            # Python frame (the class's log() below is what it does).
            self.log = self._ring.log
        self._file = None  # the live file, kept open between flushes
        self._file_bytes = 0
        self._unsynced = False  # written since the last sync (or close)
        self._names = [self.path] + ["%s.%d" % (self.path, i) for i in range(1, keep + 1)]
        self._task = BackgroundTask()  # the writer (see _run)
        self._wake = asyncio.Event()  # set by the ring when it is half full
        self.caller_writes = 0  # full rings a caller wrote out (the writer had not run)
        self.dropped = 0
        self.write_errors = 0

    @property
    def lines(self):
        """Records accepted since start."""
        return self._ring.lines

    # ---- records ----------------------------------------------------------------------------

    def log(self, level, msg, fields=None):
        """One record; fields is a dict (nested dicts and lists are flattened, masked names
        hide their subtree). With a dict the caller already has, a line allocates nothing: no
        keyword arguments here, since MicroPython builds a dict for **kw on every call."""
        ring = self._ring
        lines = ring.lines
        ring.log(level, msg, fields)
        if self.echo and ring.lines != lines:
            print(bytes(memoryview(ring.buf)[ring.last:ring.used - 1]).decode())

    def _slow(self, level, msg, fields, n):
        """What the ring leaves to Python: the ring half full (the writer task is woken), a
        full ring (the writer has not run: the caller writes it out, then the ring frames
        the record again), an unknown level or a non-str message, and a record longer than
        a line (kept as the head of its message with "truncated": true)."""
        if n == SLOW_WAKE_WRITER:
            return self._wake.set()
        if n == SLOW_RING_FULL:
            self.caller_writes += 1
            return self._spill()
        if n == SLOW_UNKNOWN_LEVEL:
            raise ValueError("unknown log level " + str(level))
        ring = self._ring
        if n == SLOW_NOT_STR:
            return ring.log(level, str(msg), fields)
        msg = msg[:96]
        n = self._frame(ring.buf, ring.used, ring.stamp, level, msg, TRUNCATED, ())
        if ring.used + n > len(ring.buf):
            self._spill()
            n = self._frame(ring.buf, ring.used, ring.stamp, level, msg, TRUNCATED, ())
        if ring.used + n > len(ring.buf):  # a ring smaller than a truncated record
            self.dropped += 1
            return None
        ring.last = ring.used
        ring.used += n
        ring.lines += 1
        return None

    def debug(self, msg, fields=None, **kw):
        self.log("DEBUG", msg, _merge(fields, kw))

    def info(self, msg, fields=None, **kw):
        self.log("INFO", msg, _merge(fields, kw))

    def warning(self, msg, fields=None, **kw):
        self.log("WARNING", msg, _merge(fields, kw))

    def error(self, msg, fields=None, **kw):
        self.log("ERROR", msg, _merge(fields, kw))

    def set_level(self, level):
        self.level = self._ring.threshold = LEVELS[level]

    def on_config(self, changed, config):
        """ConfigManager subscriber: level and masked fields follow configuration."""
        if "log_level" in changed:
            self.set_level(config["log_level"])
        if "mask_fields" in changed:
            self.mask_fields = self._ring.mask = set(config["mask_fields"]) | self.mask_fields

    # ---- flash ------------------------------------------------------------------------------

    def _size(self, path):
        try:
            return os.stat(path)[6]
        except OSError:
            return 0

    def flush(self):
        """Write the ring to flash and make it durable (the background task every flush_ms,
        and stop()); the file stays open between flushes, so a flush allocates nothing."""
        self._write(True)

    def _spill(self):
        """The ring appended to the live file without a sync (by the woken writer, or by a
        caller that filled it). A sync ends littlefs's write of the file's last block, so
        the next append would copy that block (an erase and up to 4 KB programmed); the
        writer's flush() every flush_ms syncs."""
        self._write(False)

    def _write(self, durable):
        ring = self._ring
        used = ring.used
        try:
            if used:
                f = self._file
                if f is None or self._file_bytes + used > self.max_bytes:
                    f = self._open(used)  # rotates first when the file would outgrow max_bytes
                f.write(ring.buf, 0, used)  # the stream's (buf, offset, length) form
                self._file_bytes += used
                self._unsynced = True
            if durable and self._unsynced:
                sync(self._file)
                self._unsynced = False
        except OSError:
            self.write_errors += 1
            self.dropped += self.lines_in_ring()
            self._close()
        ring.used = ring.last = 0

    def _open(self, incoming):
        """The live file, ready for `incoming` more bytes (rotated first if they overflow it)."""
        self._close()
        makedirs(self.directory)
        size = self._size(self.path)
        if size + incoming > self.max_bytes:
            self.rotate()
            size = 0
        self._file = open(self.path, "ab")
        self._file_bytes = size
        return self._file

    def _close(self):
        self._unsynced = False  # closing syncs
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def lines_in_ring(self):
        return bytes(memoryview(self._ring.buf)[:self._ring.used]).count(b"\n")

    def rotate(self):
        self._close()
        names = self._names  # app.log, app.log.1 .. app.log.<keep>
        if self.keep:
            remove(names[self.keep])
        for i in range(self.keep - 1, 0, -1):
            try:
                os.rename(names[i], names[i + 1])
            except OSError:
                pass
        if self.keep:
            try:
                os.rename(self.path, names[1])
            except OSError:
                pass
        else:
            remove(self.path)
        self.expire()

    def expire(self):
        """Drop rotated files older than max_age_s."""
        if not self.max_age_s:
            return
        limit = self.clock.time() - self.max_age_s
        for path in self._names[1:self.keep + 1]:
            try:
                if os.stat(path)[8] < limit:
                    os.remove(path)
            except OSError:
                pass

    def files(self):
        """The log files on flash, newest first."""
        return [n for n in self._names if self._size(n) or exists(n)]

    # ---- lifecycle --------------------------------------------------------------------------

    def register(self, metrics, health):
        # plain attributes on the per-line path; the registry reads them when rendering
        metrics.counter("log_lines_total", "Log lines accepted", read=lambda: self.lines)
        metrics.counter("log_lines_dropped_total", "Log lines lost (too long or flash error)",
                        read=lambda: self.dropped)
        health.add_check("log_flash", lambda: (self.write_errors == 0,
                                               "%d write errors" % self.write_errors),
                         required=False)

    async def start(self):
        self._task.start(self._run)

    async def stop(self):
        self._task.stop()
        self.flush()
        self._close()

    async def _run(self):
        """The writer: the ring goes to flash when the ring says it is half full (appended,
        no sync) and every flush_ms (synced), so a caller that yields between lines never
        waits for flash; only one that fills the whole ring without yielding does."""
        wake = self._wake
        synced = ticks_ms()
        while True:
            try:
                await asyncio.wait_for_ms(wake.wait(), self.flush_ms)
                wake.clear()
            except asyncio.TimeoutError:
                pass
            # a sync at least every flush_ms, also when the ring wakes the writer more often
            now = ticks_ms()
            if ticks_diff(now, synced) >= self.flush_ms:
                self.flush()
                synced = now
            else:
                self._spill()
