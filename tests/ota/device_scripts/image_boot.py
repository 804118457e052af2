# One boot of a device that stages full images (ImageStage). Joined with ota_collaborators.py,
# image_manager.py, cut_link.py and run_steps.py, in that order.
import sys, json, asyncio, binascii, os
cfg = json.loads(os.getenv("OTA_DEVICE_CFG"))  # set by tests/harness/ota_fleet.py
from iotlib.ota.bundle import BundleStore
from iotlib.ota.image import ImageStage
