# TimeSyncManager: SNTP against the servers configuration gives (the constructor list is the
# fallback), periodic resync, drift measurement, an alarm after repeated failure.
#
# Until the first sync `synced` is False and time() returns None; managers that need wall-clock
# time (alarms' first/last seen, token expiry) check `synced` or wait on `wait_synced()`.
# The correction is kept as an offset over the local clock; set_rtc=True also writes the RTC
# (rp2: machine.RTC) so time.time() itself becomes right.
import asyncio
import time

from iotlib import sntp
from iotlib.task import BackgroundTask


def _set_rtc(unix_s):
    import machine
    t = time.gmtime(int(unix_s))
    # RTC.datetime: (year, month, day, weekday, hours, minutes, seconds, subseconds)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


class TimeSyncManager:
    def __init__(self, servers=("pool.ntp.org",), interval_s=3600, retry_s=30, timeout_ms=1500,
                 fail_alarm_after=3, alarms=None, set_rtc=False, now=None, metrics=None,
                 log=None):
        self.fallback = list(servers)
        self.configured = []        # from configuration / registration, tried first
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.timeout_ms = timeout_ms
        self.fail_alarm_after = fail_alarm_after
        self.alarms = alarms
        self.set_rtc = set_rtc
        self.now = now or sntp.now_unix   # the local clock being corrected
        self.log = log
        self.offset = 0.0           # seconds to add to the local clock
        self.applied = 0.0          # corrections already written into the RTC
        self.delay = None
        self.drift_ppm = None
        self.server = None
        self.syncs = 0
        self.failures = 0           # consecutive failed rounds
        self.last_error = None
        self._synced = asyncio.Event()
        self._last = None           # (local_raw, raw_offset) at the last sync
        self._task = BackgroundTask()
        if metrics is not None:
            metrics.gauge("time_offset_seconds", "Last measured clock offset", read=lambda: self.offset)
            metrics.gauge("time_synced", "1 once SNTP has answered", read=lambda: int(self.synced))

    @property
    def synced(self):
        return self._synced.is_set()

    async def wait_synced(self):
        await self._synced.wait()

    def servers(self):
        seen = []
        for s in self.configured + self.fallback:
            if s not in seen:
                seen.append(s)
        return seen

    def set_servers(self, servers):
        """Servers from configuration or registration (ntp_servers); tried before the fallback."""
        self.configured = list(servers or [])

    def on_config(self, changed, config):
        if "ntp_servers" in changed:
            self.set_servers(config.get("ntp_servers"))

    def time(self):
        """Corrected unix time in seconds (float), or None before the first sync."""
        if not self.synced:
            return None
        return self.now() + self.offset

    def _say(self, *args):
        if self.log is not None:
            self.log(*args)

    async def sync_once(self):
        """Try each server in order; True on the first answer."""
        errors = []
        for server in self.servers():
            try:
                r = await sntp.query(server, timeout_ms=self.timeout_ms, now=self.now)
            except Exception as e:  # DNS failure, timeout, bad reply: next server
                errors.append("%s: %s" % (server, e))
                continue
            self._accept(r)
            return True
        self.failures += 1
        self.last_error = "; ".join(errors) or "no servers"
        self._say("timesync: failed", self.failures, self.last_error)
        if self.failures == self.fail_alarm_after and self.alarms is not None:
            self.alarms.report_alarm({"type": "time_sync_failed", "severity": "warning",
                                      "source": "timesync", "message": self.last_error[:200]})
        return False

    def _accept(self, r):
        local = self.now()
        # raw offset: relative to the uncorrected clock, so RTC writes do not look like drift
        raw = r["offset"] + self.applied
        if self._last is not None:
            elapsed = (local - self.applied) - self._last[0]
            if elapsed > 1:
                self.drift_ppm = (raw - self._last[1]) / elapsed * 1e6
        self._last = (local - self.applied, raw)
        self.offset = r["offset"]
        self.delay = r["delay"]
        self.server = r["server"]
        self.syncs += 1
        self.failures = 0
        if self.set_rtc and abs(self.offset) > 0.5:
            _set_rtc(local + self.offset)
            self.applied += self.offset
            self.offset = 0.0
        self._synced.set()
        self._say("timesync: synced", self.server, "offset %.3f s" % r["offset"])

    async def sync_loop(self):
        while True:
            ok = await self.sync_once()
            await asyncio.sleep(self.interval_s if ok else self.retry_s)

    async def start(self):
        self._task.start(self.sync_loop)

    async def stop(self):
        self._task.stop()
