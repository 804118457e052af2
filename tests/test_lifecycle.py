"""One lifecycle (iotlib.lifecycle), on the unix build: every manager the Device holds follows
the protocol, the Device starts its one list in order with the controller last and stops
in reverse, the controllers start no manager themselves, and safe mode runs its own list
the same way. (enabled_components switching a manager off and on against the real
fleet-server: test_device_e2e.py.)"""
import json

from conftest import run_unix

# A provisioned relays device whose discovery never answers (port 9): registration keeps
# retrying, which is all the start order needs.
_BUILD = """
import asyncio, json, sys
SETTINGS = %r
with open("device.json", "w") as f:
    json.dump(SETTINGS, f)
from iotlib import hal
from iotlib.device import Device, boot_early
from iotlib.lifecycle import Components
from relays_controller import RelaysController
from iotlib.safe_mode import SafeModeController
early = boot_early(SETTINGS, hal.load())
device = Device(SETTINGS, %s, early)

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
"""

SETTINGS = {"device_id": "life-1", "device_key": "k" * 64, "api_key": "a" * 64,
            "tenant": "acme", "namespace": "plant1", "role": "relays", "use_wdt": False,
            "service_discovery_url": "http://127.0.0.1:9/api",
            "relays": {"relay1": {"pin": 2}}}

CORE = ["NetworkManager", "AuthManager", "Logger", "DenialLog", "FleetLink"]


def _run(tmp_path, controller):
    out = run_unix(_BUILD % (SETTINGS, controller), cwd=tmp_path, timeout=60)
    assert "SEED_DEFAULTS False" in out, out
    lines = {}
    protocol = []
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word == "PROTOCOL":
            protocol.append(rest)
        elif word in ("LIST", "STARTED", "STOPPED"):
            lines[word] = json.loads(rest.replace("'", '"'))
    return protocol, lines


def test_device_starts_its_one_list_in_order_the_controller_last_and_stops_in_reverse(tmp_path):
    protocol, out = _run(tmp_path, "RelaysController")
    assert out["LIST"] == CORE + ["ConfigManager", "Components"]
    optional = ["AlarmManager", "AfterRegistration(StateManager)",
                "AfterRegistration(OTAUpdateManager)", "TimeSyncManager"]
    assert protocol == ["%s True" % m for m in out["LIST"] + optional]
    # the relays go safe first; the optional managers start inside Components, in its order
    assert out["STARTED"] == (["safe_start RelaysController"]
                              + ["start " + m for m in CORE + ["ConfigManager", "Components"]]
                              + ["start " + m for m in optional]
                              + ["start RelaysController"])
    assert out["STOPPED"] == (["stop RelaysController", "stop Components"]
                              + ["stop " + m for m in reversed(optional)]
                              + ["stop " + m for m in reversed(CORE + ["ConfigManager"])])


def test_safe_mode_runs_its_own_list_the_same_way(tmp_path):
    protocol, out = _run(tmp_path, "SafeModeController")
    safe = CORE + ["AlarmManager", "AfterRegistration(OTAUpdateManager)", "TimeSyncManager"]
    assert out["LIST"] == safe  # no config poller, no state
    assert protocol == ["%s True" % m for m in safe]
    assert out["STARTED"] == (["safe_start SafeModeController"]
                              + ["start " + m for m in safe] + ["start SafeModeController"])
    assert out["STOPPED"] == (["stop SafeModeController"]
                              + ["stop " + m for m in reversed(safe)])
