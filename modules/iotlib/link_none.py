# The link of a board built without the Wi-Fi driver (iotlib.hal.rp2.link() chooses it).


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
