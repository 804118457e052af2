"""Starting a role the way a user does: a device.json in a folder, the unix build's boot."""
import json

import pytest

import httpx

from harness.run import run_unix

pytestmark = pytest.mark.unix

# -- boot ------------------------------------------------------------------------------


def test_unix_boot_without_device_json_says_not_provisioned(tmp_path):
    out = run_unix("import iot_boot\niot_boot.run()", cwd=tmp_path)
    assert "not provisioned" in out and "SIM" in out


def test_unix_boot_rejects_unknown_role(tmp_path):
    (tmp_path / "device.json").write_text(json.dumps({"device_id": "x", "api_key": "k",
                                                      "role": "toaster"}))
    out = run_unix("import iot_boot\niot_boot.run()", cwd=tmp_path)
    assert "role must be one of relays, sensors" in out


def test_unix_boot_names_missing_provisioning_field(tmp_path):
    (tmp_path / "device.json").write_text(json.dumps({"device_id": "x", "role": "relays"}))
    out = run_unix("import iot_boot\niot_boot.run()", cwd=tmp_path)  # printed, not raised
    assert "device.json: api_key: missing (required)" in out


def test_both_roles_start_from_device_json_and_report_ready(role_device):
    relays = role_device("relays", relay_pins={"relay1": 2})
    sensors = role_device("sensors", fields={"t": {"source": "sim", "rate_hz": 10}})
    for d in (relays, sensors):
        r = httpx.get(d.url + "/health/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True
        assert "starting" in d.output() and d.settings["device_id"] in d.output()
