"""OTA pushed from discovery: `fleet-admin action --id D check_update` makes a whole unix
device (iot_boot, device.py's wiring) ask the updates service with its next heartbeat, long
before its OTA poll (OTAUpdateManager's poll_s, 3600 s on the device) comes round.
"""
import json
import time

import pytest

import httpx

from iot_sign import load_private_key, pack_bundle, sign_manifest
from harness.fleet_device import Fleet, logged_requests
from harness.role_device import RoleDevice
from harness.run import DEV_KEY, SIM_EXIT_RESET
from harness.waiting import wait_until

pytestmark = pytest.mark.unix

DEVICE_ID = "push-1"


def test_check_update_pushed_with_a_heartbeat_installs_without_waiting_for_the_poll(tmp_path):
    fleet = Fleet(tmp_path, {"ntp_servers": ["127.0.0.1:9"]})
    creds = fleet.provision(DEVICE_ID, "acme", "plant1", "relays")
    (tmp_path / "config.json").write_text(json.dumps({"heartbeat_s": 5}))
    fleet.admin("config-set", "--id", DEVICE_ID, "--file", str(tmp_path / "config.json"))
    fleet.start()
    settings = dict(device_id=DEVICE_ID, device_key=creds["device_key"], api_key=creds["api_key"],
                    tenant="acme", namespace="plant1", service_discovery_url=fleet.url + "/devices")
    dev = RoleDevice(tmp_path, "relays", **settings)
    update = "/api/devices/%s/update" % DEVICE_ID
    beats = "/api/devices/%s/heartbeat" % DEVICE_ID
    try:
        dev.start()
        wait_until("the check at boot", lambda: logged_requests(fleet, update))  # 204: nothing yet
        files = {"ota_push_app.py": b"VERSION = '99.0.0'\n"}
        blob = pack_bundle(files)
        manifest = sign_manifest(load_private_key(str(DEV_KEY)), "bundle", "99.0.0", None, blob)
        (tmp_path / "b.bin").write_bytes(blob)
        (tmp_path / "b.json").write_text(json.dumps(manifest))
        fleet.admin("publish", "--tenant", "acme", "--file", str(tmp_path / "b.bin"),
                    "--manifest", str(tmp_path / "b.json"))
        # heartbeats go on, but nothing asks for updates: the poll is an hour away
        seen = len(logged_requests(fleet, beats))
        wait_until("two more heartbeats", lambda: len(logged_requests(fleet, beats)) >= seen + 2, timeout=30)
        assert len(logged_requests(fleet, update)) == 1

        fleet.admin("action", "--id", DEVICE_ID, "check_update")
        pushed = time.time()
        # installed, then the hal's reset: the unix build exits as every simulated reset does
        assert dev.proc.wait(30) == SIM_EXIT_RESET, dev.output()
        assert "SIMRESET: device reset" in dev.output(), dev.output()
        assert time.time() - pushed < 15  # one heartbeat (5 s) and the download
        checks = logged_requests(fleet, update)
        assert [r["status"] for r in checks] == [204, 200], checks
        assert "Traceback" not in dev.output(), dev.output()
        dev._out.close()

        # the next boot runs the pushed bundle, on trial, and knows why it reset
        dev.start()
        assert json.loads((dev.dir / "boot.json").read_text())["reset_cause"] == "ota"
        admin = fleet.admin("token", "--tenant", "acme", "--namespace", "plant1", "--role", "admin")
        r = httpx.get(dev.url + "/ota/state", headers={"Authorization": "Bearer " + admin["token"]},
                      timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["running_version"] == "99.0.0" and r.json()["trial"], r.json()
    finally:
        dev.stop()
        fleet.stop()
