# The swapped Wi-Fi image's boot: the stage, the OTA manager and its state; run by tests/ota/test_image_wifi.py.
import sys, machine
from iotlib.storage import exists
from iotlib.ota.bundle import BundleStore
from iotlib import hal
from iotlib.ota.manager import OTAUpdateManager
from iotlib.health import Health
health = Health()
health.add_check("app", lambda: (True, "ok"))
mgr = OTAUpdateManager("http://fleet/api", device_id="emu-1", store=BundleStore("ota"),
                       factory_version="1.0.0", image=hal.load().staging(), health=health,
                       reset=machine.reset)
v = mgr.after_boot()
bs = mgr.boot_state()
print("boot", bs["image_mode"], bs["image_trial_boots"], v, exists("ota/image.z"), sys.implementation._build)
