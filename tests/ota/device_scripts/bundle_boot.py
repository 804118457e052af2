# One boot of a device with application bundles: BundleStore.boot(), then the application
# (`ota_app` from the active bundle, or the factory code). Joined with ota_collaborators.py,
# bundle_manager.py, cut_link.py and run_steps.py, in that order.
import sys, json, asyncio, binascii, os
cfg = json.loads(os.getenv("OTA_DEVICE_CFG"))  # set by tests/harness/ota_fleet.py
from iotlib.ota.bundle import BundleStore
store = BundleStore(cfg["root"], max_boots=cfg.get("max_boots", 3))
print("BOOT", json.dumps(store.boot()))
try:
    import ota_app
    app_version, healthy = ota_app.VERSION, ota_app.healthy
except ImportError:
    app_version, healthy = "factory", (lambda: True)
print("APP", app_version)
