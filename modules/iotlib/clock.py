# Wall-clock and monotonic time behind one object, so tests can shift time and the
# managers never ask which port they run on.
import time

# Before NTP the RP2040 RTC starts in 2021; any earlier wall-clock means "not synced".
SYNCED_AFTER = 1704067200  # 2024-01-01


class Clock:
    def __init__(self, offset_s=0):
        self.offset_s = offset_s  # tests move the clock with this

    def time(self):
        """Seconds since 1970 (int)."""
        return int(time.time()) + self.offset_s

    def ticks_ms(self):
        return time.ticks_ms()

    def ticks_diff(self, a, b):
        return time.ticks_diff(a, b)

    def synced(self):
        return self.time() >= SYNCED_AFTER

