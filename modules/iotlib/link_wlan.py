# Link backends on hardware: the CYW43 station interface through network.WLAN, and a
# "no radio" link for boards built without the wireless driver.

# CYW43 power-management word that turns power saving off (network.WLAN.PM_NONE on the Pico W).
PM_NONE = 0xA11140


class WlanLink:
    needs_ssid = True  # a real radio joins a named network; the simulation needs none

    def __init__(self, wlan=None):
        import network

        self.wlan = wlan or network.WLAN(network.STA_IF)
        self.connects = 0

    def active(self, on=True):
        self.wlan.active(on)

    def set_power_save(self, on):
        if not on:
            # power saving adds hundreds of ms of latency to every packet the device receives
            self.wlan.config(pm=getattr(self.wlan, "PM_NONE", PM_NONE))

    def connect(self, ssid, password):
        self.connects += 1
        self.wlan.connect(ssid, password)

    def disconnect(self):
        self.wlan.disconnect()

    def isconnected(self):
        return self.wlan.isconnected()

    def rssi(self):
        try:
            return self.wlan.status("rssi")
        except (OSError, ValueError):
            return None

    def ifconfig(self):
        return self.wlan.ifconfig()


class NoRadioLink:
    """Boards without Wi-Fi: never connects; readiness reports it plainly."""

    connects = 0

    def active(self, on=True):
        pass

    def set_power_save(self, on):
        pass

    def connect(self, ssid, password):
        self.connects += 1

    def disconnect(self):
        pass

    def isconnected(self):
        return False

    def rssi(self):
        return None

    def ifconfig(self):
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")


def default_link():
    """Chosen once at start-up: the radio when the firmware has one, else the simulation on
    the unix port, else no radio."""
    try:
        import network

        if hasattr(network, "WLAN"):
            return WlanLink()
    except ImportError:
        pass
    import sys

    if sys.platform in ("linux", "darwin"):
        from iotlib.link_sim import SimLink

        return SimLink()
    return NoRadioLink()
