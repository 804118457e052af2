# TimeSyncManager: SNTP against the servers configuration gives (the constructor list is the
# fallback), periodic resync, drift measurement, an alarm after repeated failure (cleared by
# the next answer) and a clock_drift alarm when a sync finds the clock, synced earlier this
# boot, off by more than drift_alarm_s (cleared by the next sync that finds it within
# bounds). The first sync of a boot sets the clock: what it finds is the power-on gap (or a
# battery RTC's error), not drift, and raises nothing.
#
# Each answer goes to the device's Clock (clock.sync): the RTC is stepped (rp2: machine.RTC,
# so time.time() itself becomes right; unix: the simulated RTC) and every manager holding
# the clock sees the synced time. Until the first answer `synced` is False and time()
# returns None; the clock meanwhile is only a lower bound (see iotlib.clock).
import asyncio

from iotlib import sntp
from iotlib.clock import Clock
from iotlib.task import BackgroundTask

_US = 1000000


class TimeSyncManager:
    def __init__(self, servers=("pool.ntp.org",), interval_s=3600, retry_s=30, timeout_ms=1500,
                 fail_alarm_after=3, alarms=None, clock=None, log=None, drift_alarm_s=2):
        if not isinstance(servers, (list, tuple)) or not all(isinstance(s, str) for s in servers):
            raise TypeError("TimeSyncManager: servers must be a list of host names, e.g. "
                            "[\"pool.ntp.org\"], not %r" % (servers,))
        self.fallback = list(servers)
        self.configured = {"config": [], "discovery": []}  # tried first, in this order
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.timeout_ms = timeout_ms
        self.fail_alarm_after = fail_alarm_after
        self.drift_alarm_us = int(drift_alarm_s * _US)  # 0: no clock_drift alarm
        self.alarms = alarms
        self.clock = clock or Clock()   # the RTC being corrected
        self.log = log
        self.offset_us = 0          # the last measured offset of the RTC
        self.delay_us = None
        self.drift_ppm = None
        self.server = None
        self.syncs = 0
        self.failures = 0           # consecutive failed rounds
        self.last_error = None
        self._synced = asyncio.Event()
        self._wake = asyncio.Event()    # set_servers() during a wait: try them now
        self._last = None           # (monotonic us, offset us + steps) at the last sync
        self._task = BackgroundTask()

    def register(self, metrics, health):
        metrics.gauge("time_offset_seconds", "Last measured clock offset", read=lambda: self.offset)
        metrics.gauge("time_synced", "1 once SNTP has answered", read=lambda: int(self.synced))

    @property
    def offset(self):
        """The last measured offset in seconds (float: for logs and metrics only)."""
        return self.offset_us / _US

    @property
    def delay(self):
        return None if self.delay_us is None else self.delay_us / _US

    @property
    def synced(self):
        return self._synced.is_set()

    async def wait_synced(self):
        await self._synced.wait()

    def servers(self):
        seen = []
        for s in self.configured["config"] + self.configured["discovery"] + self.fallback:
            if s not in seen:
                seen.append(s)
        return seen

    def set_servers(self, servers, source="config"):
        """ntp_servers from configuration (source "config") or registration ("discovery");
        both are tried before the fallback, and one does not erase the other. New servers
        end a retry wait at once: the API waits on the first sync."""
        servers = list(servers or [])
        if servers != self.configured[source]:
            self.configured[source] = servers
            self._wake.set()

    def on_config(self, changed, config):
        if "ntp_servers" in changed:
            self.set_servers(config.get("ntp_servers"), "config")

    def time(self):
        """Synced unix time in seconds (int), or None before the first sync."""
        if not self.synced:
            return None
        return self.clock.time()

    def _say(self, *args):
        if self.log is not None:
            self.log(*args)

    async def sync_once(self):
        """Try each server in order; True on the first answer."""
        errors = []
        for server in self.servers():
            try:
                r = await sntp.query(server, timeout_ms=self.timeout_ms, now=self.clock.raw_us)
            except Exception as e:  # DNS failure, timeout, bad reply: next server
                errors.append("%s: %s" % (server, e))
                continue
            self._accept(r)
            return True
        self.failures += 1
        self.last_error = "; ".join(errors) or "no servers"
        self._say("timesync: failed", self.failures, self.last_error)
        if self.failures >= self.fail_alarm_after and self.alarms is not None:
            self.alarms.raise_condition({"type": "time_sync_failed", "severity": "warning",
                                         "source": "timesync", "message": self.last_error[:200]})
        return False

    def _accept(self, r):
        clock = self.clock
        drifted = clock.synced  # synced before this answer: only then is an offset drift
        # drift: offsets relative to the never-stepped monotonic clock, so steps written
        # into the RTC do not look like drift
        mono = clock.monotonic_us()
        raw = r["offset_us"] + clock.raw_us() - mono
        if self._last is not None:
            elapsed = mono - self._last[0]
            if elapsed > _US:
                self.drift_ppm = (raw - self._last[1]) * _US // elapsed
        self._last = (mono, raw)
        self.offset_us = r["offset_us"]
        self.delay_us = r["delay_us"]
        self.server = r["server"]
        self.syncs += 1
        self.failures = 0
        clock.sync(r["offset_us"])
        self._synced.set()
        self._say("timesync: synced", self.server, "offset %d ms" % (r["offset_us"] // 1000))
        alarms = self.alarms
        if alarms is not None:
            alarms.clear_alarm("time_sync_failed", "timesync")
            off = r["offset_us"]
            if drifted and self.drift_alarm_us and abs(off) > self.drift_alarm_us:
                alarms.raise_condition({"type": "clock_drift", "severity": "warning",
                                        "source": "timesync", "message":
                                        "clock off by %d ms (%s)" % (off // 1000, self.server)})
            else:
                alarms.clear_alarm("clock_drift", "timesync")

    async def sync_loop(self):
        """Forever: sync, then again after interval_s (retry_s after a failure). start()'s
        task, or the caller's own: stop() ends it either way."""
        if not self._task.start():
            return
        while True:
            self._wake.clear()
            ok = await self.sync_once()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s if ok else self.retry_s)
            except asyncio.TimeoutError:
                pass

    async def start(self):
        self._task.start(self.sync_loop)

    async def stop(self):
        self._task.stop()
