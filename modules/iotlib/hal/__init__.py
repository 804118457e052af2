# The hardware, chosen once. load() picks the module of what we run on (iotlib.hal.rp2 on the
# Pico W, iotlib.hal.unix for the simulation) and returns it; boot (iot_boot, device.boot_early)
# hands it to every manager that touches the hardware. Only this package imports machine or
# network or asks sys.platform. Both modules have the same names:
#   reset(cause, boot=None)   note the cause where the next boot's BootCounter reads it (boot's
#                             file; without one, the device's boot.json), then reset
#   reset_cause()             the hardware's reason for this boot (CAUSE_*), or None (unix)
#   wdt(timeout_ms, on_expire=None)   a started watchdog (feed(); stop() where it can stop)
#   rtc()                     the chip's one RTC: now_us(), set_us(us), trusted
#   link()                    the network link for NetworkManager
#   pin(gpio, level)          an output pin at `level` (the pure-Python RelayBank)
#   adc()                     read(channel) -> 12-bit sample (the pure-Python AdcSampler)
#   staging(root)             the OTA image stage (iotlib.ota.image.ImageStage)
#   sync(f)                   make what was written to an open file durable
CAUSE_POWER = "power"
CAUSE_WDT = "wdt"  # the watchdog expired, or a reset that left no note

_chosen = []


def load():
    if not _chosen:
        import sys
        if sys.platform == "rp2":
            from iotlib.hal import rp2 as chosen
        else:
            from iotlib.hal import unix as chosen
        _chosen.append(chosen)
    return _chosen[0]


def note(cause, boot=None):
    """reset()'s first half, the same on every platform. A flash that fails here must not
    stop the reset: the next boot then reports what the hardware says."""
    try:
        if boot is None:
            from iotlib.boot_counter import BootCounter
            boot = BootCounter()
        boot.note_reset(cause)
    except Exception as e:
        print("reset: cause %s not recorded: %s" % (cause, e))
