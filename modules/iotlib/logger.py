# Structured JSON-line logging: records are framed (by the C module when present) into a
# preallocated RAM ring and written to flash in batches to spare the flash; the file rotates
# by size and old files are dropped by count and age. Masked fields are replaced with "***"
# wherever they appear in a record, nested or not.
import asyncio
import os

from iotlib import jsonlog
from iotlib.clock import Clock
from iotlib.storage import exists, makedirs, remove
from iotlib.task import BackgroundTask

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
MASK = "***"


def flatten(fields, masked, out=None, prefix=""):
    """Nested dicts and lists become "a.b" / "a.0" keys; a masked name hides its whole subtree."""
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


class Logger:
    def __init__(self, mask_fields=None, level="INFO", directory="logs", name="app.log",
                 max_bytes=16384, keep=3, max_age_s=0, ring_bytes=2048, line_bytes=384,
                 flush_ms=5000, clock=None, echo=False):
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
        self._ring = bytearray(ring_bytes)
        self._line = bytearray(line_bytes)
        self._used = 0
        self._task = BackgroundTask()
        self.lines = 0
        self.dropped = 0
        self.write_errors = 0

    # ---- records ----------------------------------------------------------------------------

    def log(self, level, msg, fields=None, **kw):
        severity = LEVELS.get(level)
        if severity is None:
            raise ValueError("unknown log level " + str(level))
        if severity < self.level:
            return
        if kw:
            fields = dict(fields or {}, **kw)
        flat = flatten(fields, self.mask_fields) if fields else None
        n = self._frame(level, str(msg), flat)
        if n == 0:
            self.dropped += 1
            return
        if self.echo:
            print(bytes(memoryview(self._line)[:n - 1]).decode())
        if self._used + n > len(self._ring):
            self.flush()
            if self._used + n > len(self._ring):  # flash refused the batch: lose this line
                self.dropped += 1
                return
        self._ring[self._used:self._used + n] = memoryview(self._line)[:n]
        self._used += n
        self.lines += 1

    def _frame(self, level, msg, flat):
        ts = self.clock.time()
        try:
            return jsonlog.frame_into(self._line, ts, level, msg, flat, self.mask_fields)
        except ValueError:
            pass
        try:  # too long for one line: keep the head of the message and say so
            return jsonlog.frame_into(self._line, ts, level, msg[:96], {"truncated": True}, ())
        except ValueError:
            return 0

    def debug(self, msg, **kw):
        self.log("DEBUG", msg, **kw)

    def info(self, msg, **kw):
        self.log("INFO", msg, **kw)

    def warning(self, msg, **kw):
        self.log("WARNING", msg, **kw)

    def error(self, msg, **kw):
        self.log("ERROR", msg, **kw)

    def set_level(self, level):
        self.level = LEVELS[level]

    def on_config(self, changed, config):
        """ConfigManager subscriber: level and masked fields follow configuration."""
        if "log_level" in changed:
            self.set_level(config["log_level"])
        if "mask_fields" in changed:
            self.mask_fields = set(config["mask_fields"]) | self.mask_fields

    # ---- flash ------------------------------------------------------------------------------

    def _size(self, path):
        try:
            return os.stat(path)[6]
        except OSError:
            return 0

    def flush(self):
        """Write the ring to flash in one append; rotate first when the file would outgrow."""
        if not self._used:
            return
        try:
            makedirs(self.directory)
            if self._size(self.path) + self._used > self.max_bytes:
                self.rotate()
            with open(self.path, "ab") as f:
                f.write(memoryview(self._ring)[:self._used])
        except OSError:
            self.write_errors += 1
            self.dropped += self.lines_in_ring()
        self._used = 0

    def lines_in_ring(self):
        return bytes(memoryview(self._ring)[:self._used]).count(b"\n")

    def rotate(self):
        remove("%s.%d" % (self.path, self.keep))
        for i in range(self.keep - 1, 0, -1):
            try:
                os.rename("%s.%d" % (self.path, i), "%s.%d" % (self.path, i + 1))
            except OSError:
                pass
        if self.keep:
            try:
                os.rename(self.path, self.path + ".1")
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
        for i in range(1, self.keep + 1):
            path = "%s.%d" % (self.path, i)
            try:
                if os.stat(path)[8] < limit:
                    os.remove(path)
            except OSError:
                pass

    def files(self):
        """The log files on flash, newest first."""
        names = [self.path] + ["%s.%d" % (self.path, i) for i in range(1, self.keep + 1)]
        return [n for n in names if self._size(n) or exists(n)]

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

    async def _run(self):
        while True:
            await asyncio.sleep_ms(self.flush_ms)
            self.flush()
