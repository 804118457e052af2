# Append-only audit trail of security events (auth failures, config changes, relay commands,
# updates). Each line carries the SHA-256 of the line before it and a head file holds the
# hash of the last line, so editing, removing or truncating any line breaks verify().
#
# Retention: the live file rotates at max_bytes and `keep` rotated files are kept, so the
# newest (keep + 1) * max_bytes of records are always on flash (device default: 4 x 32 KB).
# Only callers that passed authentication write to the command trail; failed
# authentication goes to a trail of its own (iotlib.denial_log), so it cannot flush this.
import binascii
import hashlib
import os

from iotlib import jsonlog
from iotlib.clock import Clock
from iotlib.logger import flatten
from iotlib.storage import exists, makedirs, remove, sync

GENESIS = "0" * 64


def _hash(line):
    return binascii.hexlify(hashlib.sha256(line).digest()).decode()


class Audit:
    def __init__(self, directory="logs", name="audit.log", max_bytes=32768, mask_fields=None,
                 clock=None, line_bytes=512, keep=3, keep_open=True):
        if keep < 1:
            raise ValueError("keep: at least one rotated file")
        self.keep = keep
        self.directory = directory
        self.path = directory + "/" + name
        self.head_path = self.path + ".head"
        self.max_bytes = max_bytes
        self.mask_fields = set(mask_fields or ())
        self.clock = clock or Clock()
        self._line = bytearray(line_bytes)
        self._prev = None
        self._file = self._head = None  # audit.log and its head file, open while recording
        # open files cost about 1 KB of heap each (littlefs buffers): a trail that is written
        # rarely closes them after every event instead
        self.keep_open = keep_open
        self._size = 0
        self.events = None  # metric counter, set in register()

    def _last_hash(self):
        if self._prev is None:
            try:
                with open(self.head_path) as f:
                    self._prev = f.read().split()[0]
            except (OSError, IndexError):
                self._prev = GENESIS
        return self._prev

    def record(self, event, **fields):
        """Append one event; written through at once (security events are not batched)."""
        fields["prev"] = self._last_hash()
        ts = self.clock.time()
        n = jsonlog.frame_at(self._line, 0, ts, "AUDIT", event, fields, self.mask_fields)
        if n > len(self._line):
            # too long for the line buffer: an audit event must still be written, so shorten
            # every string value rather than lose it
            flat = flatten(fields, self.mask_fields)
            for key, value in flat.items():
                if isinstance(value, str) and key != "prev":
                    flat[key] = value[:48]
            flat["truncated"] = True
            n = jsonlog.frame_into(self._line, ts, "AUDIT", event, flat, self.mask_fields)
        line = memoryview(self._line)[:n]
        try:
            f = self._log_file(n)
            f.write(line)
            sync(f)
            self._size += n
            self._prev = _hash(line)
            head = self._head_file()
            head.seek(0)
            head.write(self._prev)  # always 64 characters: overwritten in place
            sync(head)
        except OSError:
            self._close()  # reopened (and re-measured) by the next event
            raise
        if not self.keep_open:
            self._close()
        if self.events is not None:
            self.events.inc(labels=(event,))

    # The two files stay open between events, so an event costs two writes and two syncs,
    # not four opens and closes and a stat.
    def _log_file(self, incoming):
        if self._file is None:
            makedirs(self.directory)
            try:
                self._size = os.stat(self.path)[6]
            except OSError:
                self._size = 0
            self._file = open(self.path, "ab")
        if self._size + incoming > self.max_bytes:
            # `keep` older files are kept; the chain continues across the renames
            self._file.close()
            self._file = None
            self._rotate()
            self._file = open(self.path, "ab")
            self._size = 0
        return self._file

    def _head_file(self):
        if self._head is None:
            self._head = open(self.head_path, "r+b" if exists(self.head_path) else "wb")
        return self._head

    def _close(self):
        for f in (self._file, self._head):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._file = self._head = None

    def _rotate(self):
        remove("%s.%d" % (self.path, self.keep))
        for i in range(self.keep - 1, 0, -1):
            try:
                os.rename("%s.%d" % (self.path, i), "%s.%d" % (self.path, i + 1))
            except OSError:
                pass
        try:
            os.rename(self.path, self.path + ".1")
        except OSError:
            pass

    def files(self):
        """The trail's files, oldest first."""
        return ["%s.%d" % (self.path, i) for i in range(self.keep, 0, -1)] + [self.path]

    def verify(self):
        """(ok, reason): the chain from the first kept line to the head file is intact."""
        files = self.files()
        # without a rotated file the first line must start the chain
        rotated = False
        for path in files[:-1]:
            rotated = rotated or exists(path)
        prev = None if rotated else GENESIS
        number = 0
        for path in files:
            try:
                f = open(path, "rb")
            except OSError:
                continue
            with f:
                for line in f:
                    number += 1
                    marker = line.rfind(b'"prev":"')
                    if marker < 0:
                        return False, "line %d: no prev hash" % number
                    claimed = line[marker + 8:marker + 72].decode()
                    # the oldest kept line may point at a rotated-away file: trust it alone
                    if prev is not None and claimed != prev:
                        return False, "line %d: chain broken" % number
                    prev = _hash(line)
        try:
            with open(self.head_path) as f:
                head = f.read().strip()
        except OSError:
            head = None
        if number == 0:
            return head is None, "empty" if head is None else "log missing"
        if head != prev:
            return False, "last line does not match the head"
        return True, "%d lines" % number

    def register(self, metrics, health):
        self.events = metrics.counter("audit_events_total", "Audit events recorded", ("event",))

    def clear(self):
        self._close()
        for path in self.files() + [self.head_path]:
            remove(path)
        self._prev = GENESIS
