# Safe mode on the swapped Wi-Fi image builds its device; run by tests/ota/test_image_wifi.py.
import gc, json, os, sys, machine
machine.mem32[0x40058000 + 0x0C + 4] = 0x53414645   # scratch 1 = SAFE, as the loader leaves it
with open("/device.json", "w") as f:
    json.dump({"device_id": "emu-1", "device_key": "k" * 64, "api_key": "a" * 64,
               "tenant": "acme", "namespace": "plant1", "port": 8080,
               "service_discovery_url": "http://10.9.9.9/api"}, f)
import iot_boot
device = iot_boot.prepare()
device.report_safe_mode()
a = device.alarms._find("safe_mode", "ota")
print("safe", type(device.controller).__name__, device.safe_mode,
      "sensors_controller" in sys.modules, a["severity"] if a else None)
print("managers", sorted(type(m).__name__ for m in device.managers),
      device.controller.config is None)
print("state", device.ota.boot_state()["image_mode"])
os.remove("/device.json")
machine.mem32[0x40058000 + 0x0C + 4] = 0x4e4f524d
