# The Pico W's link: the CYW43 station interface (network.WLAN, made by iotlib.hal.rp2.link()).

# CYW43 power-management word that turns power saving off (network.WLAN.PM_NONE on the Pico W).
PM_NONE = 0xA11140


class WlanLink:
    needs_ssid = True  # a real radio joins a named network; the simulation needs none

    def __init__(self, wlan):
        self.wlan = wlan  # network.WLAN(network.STA_IF)
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
