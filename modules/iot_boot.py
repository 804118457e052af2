# Decide what the device runs at boot: the user's /main.py, the variant's role, or the REPL.
import os

from iotlib.buildinfo import build_info

PROVISIONING_FILE = "device.json"


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def role_for_variant(variant):
    if variant == "RELAYS":
        import relays_controller
        return relays_controller.RelaysController
    if variant == "SENSORS":
        import sensors_controller
        return sensors_controller.SensorsController
    return None


def run():
    info = build_info()
    if _exists("main.py"):  # the filesystem's own main.py, when a user installed one
        exec(open("main.py").read(), {"__name__": "__main__"})
        return
    controller_class = role_for_variant(info["variant"])
    if controller_class is None:
        return
    if not _exists(PROVISIONING_FILE):
        print("iotlib %s (%s): not provisioned, no /%s; staying at the REPL"
              % (info["version"], info["variant"], PROVISIONING_FILE))
        return
    print("iotlib %s: starting %s" % (info["version"], controller_class.__name__))

