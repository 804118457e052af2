# Failed authentication, counted and summarised. Anyone who can reach the port can fail
# authentication as fast as the network allows, so a line per failure would let them
# rotate every record of a real command out of the audit trail. Here denials go to their
# own trail (never the command trail), and at most one line per window: the first denial
# of a window in full, the rest as one summary line when the window closes. The metric
# (http_auth_denied_total / auth_failures_total) still counts every one.
import asyncio
import time

from iotlib.task import BackgroundTask


class DenialLog:
    """Collaborators: `audit`, an Audit of its own (e.g. logs/auth.log), written at most
    twice per `window_s`. note() is on the request path: it allocates nothing once the
    reasons seen are in the table."""

    def __init__(self, audit, window_s=60):
        self.audit = audit
        self.window_ms = int(window_s * 1000)
        self.total = 0  # since boot
        self.summarised = 0  # denials folded into summary lines
        self._start = None  # ticks_ms when the current window opened
        self._count = 0  # denials in this window after its first
        self._reasons = {}  # reason -> count, this window
        self._last = None  # (reason, address) of the newest denial
        self._task = BackgroundTask()

    def note(self, reason, address, sub=None):
        self.total += 1
        now = time.ticks_ms()
        if self._start is None or time.ticks_diff(now, self._start) >= self.window_ms:
            self.flush()
            self._start = now
            self.audit.record("auth_denied", reason=reason, address=address, sub=sub)
            return
        self._count += 1
        self._reasons[reason] = self._reasons.get(reason, 0) + 1
        self._last = (reason, address)

    def flush(self):
        """Write the open window's summary line, if anything was folded into it."""
        if not self._count:
            return
        reason, address = self._last
        self.audit.record("auth_denied_summary", count=self._count, reasons=self._reasons,
                          last_reason=reason, last_address=address,
                          window_s=self.window_ms // 1000)
        self.summarised += self._count
        self._count = 0
        self._reasons = {}
        self._last = None

    def register(self, metrics, health):
        metrics.counter("auth_denials_summarised_total",
                        "Failed authentications folded into summary audit lines",
                        read=lambda: self.summarised)

    async def _run(self):
        while True:
            await asyncio.sleep_ms(self.window_ms // 4 or 1)
            if self._start is not None and \
                    time.ticks_diff(time.ticks_ms(), self._start) >= self.window_ms:
                self.flush()
                self._start = None

    async def start(self):
        self._task.start(self._run)

    async def stop(self):
        self._task.stop()
        self.flush()
