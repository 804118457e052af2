"""One lifecycle (iotlib.lifecycle), on the unix build: every manager the Device holds follows
the protocol, the Device starts its one list in order with the controller last and stops
in reverse, the controllers start no manager themselves, and safe mode runs its own list
the same way. (enabled_components switching a manager off and on against the real
fleet-server: tests/device/test_device_e2e.py.)"""
import json

import pytest

from harness.run import run_unix
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix


# A provisioned relays device whose discovery never answers (port 9): registration keeps
# retrying, which is all the start order needs.
SETTINGS = {"device_id": "life-1", "device_key": "k" * 64, "api_key": "a" * 64,
            "tenant": "acme", "namespace": "plant1", "role": "relays", "use_wdt": False,
            "service_discovery_url": "http://127.0.0.1:9/api",
            "relays": {"relay1": {"pin": 2}}}

CORE = ["NetworkManager", "AuthManager", "Logger", "DenialLog", "FleetLink"]


def _run(tmp_path, controller):
    out = run_unix(device_script(__file__, "lifecycle_start_stop.py"), cwd=tmp_path, timeout=60,
                   env=script_env(settings=SETTINGS, controller=controller))
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
