# The unix simulation behind iotlib.hal. A reset ends the process with EXIT_RESET and an
# unfed watchdog ends it with EXIT_WDT (whoever runs the simulated device starts it again:
# the next boot); the RTC starts where IOTLIB_SIM_RTC says; the link is SimLink; pins keep
# their level in memory; the ADC is _iotlib's simulated one (sim_adc_set, sim_adc_feed).
import os
import sys
import time

from iotlib.hal import note

EXIT_RESET = 75
EXIT_WDT = 76
WDT_MAX_MS = 8388  # as on the RP2040: the simulation times out like the chip
POWER_ON_S = 1609459200  # 2021-01-01T00:00:00Z, what the RP2040's RTC holds at power-on
_US = 1000000


def _exit(code):
    """End the process now, from any thread (sys.exit only ends the calling thread)."""
    try:
        import ffi
        ffi.open("libc.so.6").func("v", "_exit", "i")(code)
    except Exception:
        pass
    sys.exit(code)


def reset(cause, boot=None):
    note(cause, boot)
    print("SIMRESET: device reset")
    _exit(EXIT_RESET)


def reset_cause():
    return None  # no reset register: the note the reset left tells (boot_counter)


class SimWDT:
    """machine.WDT for the simulation: a thread ends the process when feeding stops."""

    def __init__(self, timeout, on_expire=None):
        self.timeout = timeout
        self.on_expire = on_expire
        self._last = time.ticks_ms()
        import _thread
        _thread.start_new_thread(self._watch, ())

    def feed(self):
        self._last = time.ticks_ms()

    def stop(self):
        # only the simulation can stop; machine.WDT on RP2040 cannot be disabled
        self.timeout = 1 << 29

    def _watch(self):
        while True:
            time.sleep_ms(50)
            if time.ticks_diff(time.ticks_ms(), self._last) > self.timeout:
                print("SIMWDT: watchdog reset")
                if self.on_expire is not None:
                    try:
                        self.on_expire()
                    except Exception:
                        pass
                _exit(EXIT_WDT)


def wdt(timeout_ms, on_expire=None):
    return SimWDT(min(timeout_ms, WDT_MAX_MS), on_expire)


class SimRTC:
    """The simulation's RTC: starts at `start_s` (POWER_ON_S, as the chip does) when the
    process starts and runs at the host's rate; set_us() moves it, never the host clock.
    start_s=None follows the host clock and counts as trusted: a board whose RTC has a
    battery (what tests of anything but the clock model use)."""

    def __init__(self, start_s=POWER_ON_S):
        self.trusted = start_s is None
        self._base = time.time_ns() // 1000
        self._at_base = self._base if start_s is None else start_s * _US

    def now_us(self):
        return self._at_base + time.time_ns() // 1000 - self._base

    def set_us(self, unix_us):
        self._base = time.time_ns() // 1000
        self._at_base = unix_us


def _rtc_start(value):
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


_rtc = []  # the chip has one RTC: every Clock shares it


def rtc():
    if not _rtc:
        _rtc.append(SimRTC(_rtc_start(os.getenv("IOTLIB_SIM_RTC"))))
    return _rtc[0]


def link():
    from iotlib.link_sim import SimLink
    return SimLink()


class MemoryPin:
    """An output pin that keeps its level."""

    def __init__(self, level):
        self._value = level

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0


def pin(gpio, level):
    return MemoryPin(level)


def adc():
    """read(channel) from the simulated ADC the C sampler reads too (one-sample bursts)."""
    from array import array
    from _iotlib import adc_burst
    one = array("H", [0])

    def read(ch):
        adc_burst((ch,), one, 500000)
        return one[0]

    return read


def staging(root="ota"):
    # no loader: the boot state is simulated in files (iotlib.ota.image)
    from iotlib.ota.image import ImageStage
    return ImageStage(root)


def sync(f):
    pass  # the unix port's files are unbuffered (every write is a syscall); flush() is an fsync
