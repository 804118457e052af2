# One Device built from ARGS["settings"] with ARGS["controller"]; prints the protocol check,
# the start list and the start/stop calls in order (tests/device/test_lifecycle.py).
import asyncio, json, os, sys
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
SETTINGS = ARGS["settings"]
with open("device.json", "w") as f:
    json.dump(SETTINGS, f)
from iotlib import hal
from iotlib.device import Device, boot_early
from iotlib.lifecycle import Components
from relays_controller import RelaysController
from iotlib.safe_mode import SafeModeController
CONTROLLERS = {"RelaysController": RelaysController, "SafeModeController": SafeModeController}
early = boot_early(SETTINGS, hal.load())
device = Device(SETTINGS, CONTROLLERS[ARGS["controller"]], early)

calls = []
def record(obj, name, label):
    real = getattr(obj, name)
    def wrapper(*args):
        calls.append(label)
        return real(*args)
    setattr(obj, name, wrapper)

def label(m):
    kind = type(m).__name__
    return kind + "(" + type(m.manager).__name__ + ")" if kind == "AfterRegistration" else kind

everyone = list(device.managers)
for m in device.managers:
    if isinstance(m, Components):
        everyone += [c for _, c in m.managers]
for m in everyone:
    ok = all(callable(getattr(m, n, None)) for n in ("start", "stop", "register"))
    print("PROTOCOL", label(m), ok)
print("LIST", [label(m) for m in device.managers])
for m in everyone + [device.controller]:
    record(m, "start", "start " + label(m))
    record(m, "stop", "stop " + label(m))
record(device.controller, "safe_start", "safe_start " + label(device.controller))

async def main():
    await device.start()
    await asyncio.sleep_ms(50)
    print("STARTED", calls)
    del calls[:]
    await device.stop()
    print("STOPPED", calls)
    # the Device hands every manager its collaborators: no seed-style default was built
    print("SEED_DEFAULTS", "iotlib.seed_defaults" in sys.modules)
asyncio.run(main())
