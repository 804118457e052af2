# The Pico W (RP2040) behind iotlib.hal: machine.reset(), machine.WDT, machine.RTC, the CYW43
# radio through network.WLAN, machine.Pin and machine.ADC, the loader's image stage.
import machine
import time

from iotlib.hal import CAUSE_POWER, CAUSE_WDT, note

WDT_MAX_MS = 8388  # the RP2040 watchdog's longest timeout
_US = 1000000


def reset(cause, boot=None):
    note(cause, boot)
    machine.reset()


def reset_cause():
    # rp2 knows two: power-on (the RUN pin too) and the watchdog, which machine.reset() uses
    return CAUSE_WDT if machine.reset_cause() == machine.WDT_RESET else CAUSE_POWER


def wdt(timeout_ms, on_expire=None):
    # the chip resets by itself: nothing runs on expiry, reset_cause() tells the next boot
    return machine.WDT(timeout=min(timeout_ms, WDT_MAX_MS))


class MachineRTC:
    """machine.RTC: time.time_ns() follows it once set (MicroPython re-bases its microsecond
    counter on every RTC write). The RTC holds whole seconds, so a set rounds to the nearest
    one; the next SNTP round sees the remaining < 0.5 s and leaves it."""

    trusted = False  # no battery: every power-on starts at 2021-01-01

    def __init__(self):
        self._rtc = machine.RTC()

    def now_us(self):
        return time.time_ns() // 1000

    def set_us(self, unix_us):
        t = time.gmtime((unix_us + _US // 2) // _US)
        # RTC.datetime: (year, month, day, weekday, hours, minutes, seconds, subseconds)
        self._rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))


_rtc = []  # the chip has one RTC: every Clock shares it


def rtc():
    if not _rtc:
        _rtc.append(MachineRTC())
    return _rtc[0]


def link():
    """The radio when the firmware has the Wi-Fi driver, else a link that never comes up."""
    try:
        import network
        wlan = network.WLAN(network.STA_IF)
    except (ImportError, AttributeError):
        from iotlib.link_none import NoRadioLink
        return NoRadioLink()
    from iotlib.link_wlan import WlanLink
    return WlanLink(wlan)


def pin(gpio, level):
    return machine.Pin(gpio, machine.Pin.OUT, value=level)


def adc():
    adcs = {}

    def read(ch):
        a = adcs.get(ch)
        if a is None:
            a = adcs[ch] = machine.ADC(ch)
        return a.read_u16() >> 4  # read_u16 scales 12 bits up to 16

    return read


def staging(root="ota"):
    """The loader's boot state through _iotimage; simulated (files) on an image built without
    the loader or started without it."""
    from iotlib.ota.image import ImageStage
    try:
        import _iotimage
    except ImportError:
        return ImageStage(root)
    return ImageStage(root, None if _iotimage.boot_mode() == "none" else _iotimage)


def sync(f):
    f.flush()  # littlefs keeps written data in its cache until the file is synced
