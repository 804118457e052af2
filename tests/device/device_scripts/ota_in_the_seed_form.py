# Run by tests/device/test_seed_example.py after the prelude; ARGS: the device key, the API key
# registration must hand over.
import json, os
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.registration import Registration
from iotlib import OTAUpdateManager
auth = AuthManager(ARGS["device_key"])                                  # the seed's form: no tenant, no API key
ota = OTAUpdateManager(SD, auth)
reg = Registration(SD, auth, DEVICE, role="relays")
async def main():
    r = await ota.check(reboot=False)
    print("BEFORE", r["ok"], r["reason"])
    await reg.register()
    r = await ota.check(reboot=False)
    print("AFTER", r["ok"], r["update"], ota.device_id, auth.api_key == ARGS["api_key"])
asyncio.run(main())
