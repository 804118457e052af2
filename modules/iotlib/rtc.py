# The chip's real-time clock, chosen once: machine.RTC on rp2, a simulated RTC on the unix
# port. This is the only place that asks which one exists (the clock's part of the HAL).
#
# Both count integer microseconds since 1970: rp2's floats are single precision (a float of
# today's unix time is only good to 128 s), so no wall-clock arithmetic here uses floats.
import time

# What the RP2040 boot ROM / MicroPython's rp2 main.c put in the RTC at power-on.
POWER_ON_S = 1609459200  # 2021-01-01T00:00:00Z
_US = 1000000


def _host_us():
    return time.time_ns() // 1000


class MachineRTC:
    """machine.RTC (rp2): time.time_ns() follows it once set (MicroPython re-bases its
    microsecond counter on every RTC write). The RTC holds whole seconds, so a set rounds
    to the nearest one; the next SNTP round sees the remaining < 0.5 s and leaves it."""

    trusted = False  # no battery: every power-on starts at POWER_ON_S

    def __init__(self, machine):
        self._rtc = machine.RTC()

    def now_us(self):
        return time.time_ns() // 1000

    def set_us(self, unix_us):
        t = time.gmtime((unix_us + _US // 2) // _US)
        # RTC.datetime: (year, month, day, weekday, hours, minutes, seconds, subseconds)
        self._rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


class SimRTC:
    """The unix simulation's RTC: starts at `start_s` (POWER_ON_S, as the hardware does) when
    the process starts and runs at the host's rate; set_us() moves it, never the host clock.
    start_s=None follows the host clock and counts as trusted: a board whose RTC has a
    battery (what tests of anything but the clock model)."""

    def __init__(self, start_s=POWER_ON_S):
        self.trusted = start_s is None
        self._base = _host_us()
        self._at_base = self._base if start_s is None else start_s * _US

    def now_us(self):
        return self._at_base + _host_us() - self._base

    def set_us(self, unix_us):
        self._base = _host_us()
        self._at_base = unix_us


def sim_start_from_env(value):
    """IOTLIB_SIM_RTC: unset -> POWER_ON_S; "host" -> None (follow the host); else unix
    seconds. ValueError names a bad value."""
    if not value:
        return POWER_ON_S
    if value == "host":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError("IOTLIB_SIM_RTC=%s: want host or unix seconds" % value)


_chip_rtc = []  # the chip has one RTC: every default Clock shares it


def default_rtc():
    """The RTC of what we run on: machine.RTC where the port has one, else SimRTC."""
    if not _chip_rtc:
        try:
            import machine
            rtc = MachineRTC(machine) if hasattr(machine, "RTC") else None
        except ImportError:
            rtc = None
        if rtc is None:
            import os
            rtc = SimRTC(sim_start_from_env(os.getenv("IOTLIB_SIM_RTC")))
        _chip_rtc.append(rtc)
    return _chip_rtc[0]
