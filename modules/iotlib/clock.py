# The device's one clock: every manager that stamps or checks wall-clock time (auth, logger,
# audit, boot counter, alarms, sensor samples) is handed the same Clock in its constructor.
#
# Wall time comes from the chip's RTC (iotlib.hal's rtc(): machine.RTC on rp2, SimRTC on unix),
# which TimeSyncManager steps from SNTP through sync(). Until then the clock is not `trusted`
# (the RP2040's RTC starts at 2021-01-01 on every power-on) and time() is only a lower
# bound: never earlier than the last known good time persisted to flash (clock.json) plus
# the uptime since, so a token that expired before the last shutdown is still refused.
# The floor is written at the first sync of a boot and then at most every persist_s (flash
# wear: with the default hour, about 9,000 small writes a year, spread by LittleFS).
#
# monotonic() never jumps when the RTC is stepped: deadlines the device sets itself (its own
# token's expiry) use it. Integer microseconds throughout: rp2 floats are single precision.
import time

_US = 1000000
FLOOR_FILE = "clock.json"


class Clock:
    def __init__(self, rtc=None, store=None, persist_s=3600, step_min_us=500000, offset_s=0):
        if rtc is None:  # boot_early hands the hal's; a Clock built on its own takes the same
            from iotlib.hal import load
            rtc = load().rtc()
        self.rtc = rtc
        self.store = store              # where the floor lives (None: no floor)
        self.persist_s = persist_s
        self.step_min_us = step_min_us  # smaller corrections are left to the next round
        self.offset_s = offset_s        # tests move the clock with this
        self.synced = False             # an SNTP answer arrived this boot
        self.steps = 0
        self.generation = 0             # one more at every sync: stamps read from it go stale
        self.correction_s = 0           # the first sync's jump from the unsynced reading
        self._stepped_us = 0            # corrections written into the RTC this boot
        self._start_us = self.rtc.now_us()
        self._floor_us = self._load_floor()
        self._persisted_s = None
        self._listeners = []

    # ---- reading ----------------------------------------------------------------------------

    @property
    def trusted(self):
        """True once SNTP answered this boot (or the RTC keeps time across power-off)."""
        return self.synced or self.rtc.trusted

    def raw_us(self):
        """The RTC as it stands, for SNTP to measure against."""
        return self.rtc.now_us()

    def now_us(self):
        """Wall time in microseconds since 1970; before sync, at least the floor + uptime."""
        us = self.rtc.now_us()
        if not self.trusted and self._floor_us:
            us = max(us, self._floor_us + us - self._start_us)
        return us + self.offset_s * _US

    def time(self):
        """Seconds since 1970 (int)."""
        return self.now_us() // _US

    def time_ms(self):
        return self.now_us() // 1000

    def monotonic_us(self):
        """Microseconds that never jump when the RTC is stepped."""
        return self.rtc.now_us() - self._stepped_us

    def monotonic(self):
        """Seconds that never jump when the RTC is stepped (deadlines the device sets)."""
        return self.monotonic_us() // _US + self.offset_s

    def uptime_s(self):
        return (self.monotonic_us() - self._start_us) // _US

    def lower_bound(self):
        """The floor read from flash at boot (seconds, 0 when there was none)."""
        return self._floor_us // _US

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def health(self):
        """(ok, detail) for the `time_synced` readiness check."""
        if self.trusted:
            return True, "synced" if self.synced else "rtc trusted"
        return False, "waiting for SNTP (lower bound %d)" % self.lower_bound()

    # ---- setting ----------------------------------------------------------------------------

    def on_sync(self, fn):
        """fn() after the first sync of this boot: re-stamp what was stamped before, by
        adding correction_s."""
        self._listeners.append(fn)

    def sync(self, offset_us):
        """An SNTP answer: the true time is raw_us() + offset_us. Steps the RTC when that is
        more than step_min_us away, then keeps the floor on flash."""
        first = not self.synced
        before_us = self.now_us()
        if offset_us > self.step_min_us or -offset_us > self.step_min_us:
            self.rtc.set_us(self.rtc.now_us() + offset_us)
            self._stepped_us += offset_us
            self.steps += 1
        self.synced = True
        self.generation += 1
        self._keep_floor()
        if first:
            self.correction_s = (self.now_us() - before_us) // _US
            for fn in self._listeners:
                fn()

    def _keep_floor(self):
        now_s = self.time()
        self._floor_us = now_s * _US
        if self.store is None:
            return
        if self._persisted_s is not None and now_s - self._persisted_s < self.persist_s:
            return
        try:
            self.store.write_json(FLOOR_FILE, {"floor": now_s})
            self._persisted_s = now_s
        except OSError:  # a full or failing flash must not stop time keeping
            pass

    def _load_floor(self):
        if self.store is None:
            return 0
        floor = (self.store.read_json(FLOOR_FILE) or {}).get("floor")
        if isinstance(floor, int) and not isinstance(floor, bool) and floor > 0:
            return floor * _US
        return 0
