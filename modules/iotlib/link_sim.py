# The simulated Wi-Fi link (unix build): always up unless a test drops it, either by calling
# drop()/restore() or by writing "down"/"up" into the control file (another process can).
import os


class SimLink:
    def __init__(self, control_file=None, rssi=-55):
        self.control_file = control_file or os.getenv("IOTLIB_SIM_LINK") or None
        self._rssi = rssi
        self._dropped = False
        self._joined = False
        self.connects = 0
        self.pm = None

    def _down(self):
        if self._dropped:
            return True
        if self.control_file:
            try:
                with open(self.control_file) as f:
                    return f.read().strip() == "down"
            except OSError:
                pass
        return False

    def drop(self):
        self._dropped = True

    def restore(self):
        self._dropped = False

    def active(self, on=True):
        pass

    def set_power_save(self, on):
        self.pm = on

    def connect(self, ssid, password):
        self.connects += 1
        self._joined = not self._down()

    def disconnect(self):
        self._joined = False

    def isconnected(self):
        if self._down():
            self._joined = False  # a dropped link stays down until we join again
        return self._joined

    def rssi(self):
        return self._rssi if self.isconnected() else None

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
