"""StateManager: desired and reported state sync both ways across a fleet-server restart."""
import json

import pytest

from harness.fleet_device import Device, prelude
from harness.scripts import device_script

pytestmark = pytest.mark.unix

SCRIPT = "\n" + device_script(__file__, "state_both_ways.py")


def _set_desired(fleet, tmp_path, desired):
    f = tmp_path / "desired.json"
    f.write_text(json.dumps(desired))
    fleet.admin("state-set-desired", "--id", "relay-02", "--file", str(f))


def _wait_reported(fleet, want, dev, timeout=10):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fleet.admin("state-get", "--id", "relay-02")
        if got["reported"] == want:
            return got
        time.sleep(0.2)
    raise AssertionError("reported %r, want %r\n%s" % (got, want, "\n".join(dev.lines)))


def test_state_syncs_both_ways_across_a_service_restart(fleet, tmp_path):
    creds = fleet.provision("relay-02")
    fleet.start()
    dev = Device(prelude(creds, fleet.url, tmp_path / "dev") + SCRIPT, tmp_path)
    try:
        dev.expect(r"^ONLINE$")
        _wait_reported(fleet, {"relay1": 0}, dev)              # device -> service

        _set_desired(fleet, tmp_path, {"relay1": 1})            # service -> device
        dev.expect(r"^DESIRED \[\('relay1', 1\)\]$")
        _wait_reported(fleet, {"relay1": 1}, dev)

        fleet.stop()
        dev.expect(r"^OFFLINE$")
        assert dev.expect(r"^QUEUED (\w+)$").group(1) == "True"
        # an operator changes desired state while the service is down (straight into its database)
        _set_desired(fleet, tmp_path, {"relay1": 0, "mode": "eco"})
        saved = json.loads((tmp_path / "dev" / "state.json").read_text())
        assert saved["dirty"] and saved["reported"] == {"relay1": 1, "relay2": 0, "relay3": 5}

        fleet.start()
        dev.expect(r"^ONLINE$", timeout=15)
        dev.expect(r"^DESIRED \[\('mode', 'eco'\), \('relay1', 0\)\]$")
        got = _wait_reported(fleet, {"relay1": 0, "relay2": 0, "relay3": 5}, dev)
        assert got["desired"] == {"relay1": 0, "mode": "eco"}
        assert not json.loads((tmp_path / "dev" / "state.json").read_text())["dirty"]
    finally:
        dev.kill()
