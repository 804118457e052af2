"""A staged rollout across two unix-build relays devices and the real fleet-server: the update
goes to the one canary only, is promoted once the canary commits (and stays committed for the
window), then reaches the other device; a second rollout halts by itself when the canary rolls back.
"""
import json

import pytest

import httpx

from iot_sign import load_private_key, pack_bundle, sign_manifest
from harness.fleet_device import Fleet, logged_requests
from harness.role_device import RoleDevice
from harness.run import DEV_KEY
from harness.waiting import wait_until

pytestmark = pytest.mark.unix

TENANT, NAMESPACE = "acme", "plant1"
CONFIG = {"heartbeat_s": 5, "relays": {"r1": {"pin": 2}}}


def publish(fleet, tmp, version):
    blob = pack_bundle({"rollout_app.py": b"VERSION = %r\n" % version.encode()})
    manifest = sign_manifest(load_private_key(str(DEV_KEY)), "bundle", version, None, blob)
    (tmp / ("%s.bin" % version)).write_bytes(blob)
    (tmp / ("%s.json" % version)).write_text(json.dumps(manifest))
    return fleet.admin("publish", "--tenant", TENANT, "--file", str(tmp / ("%s.bin" % version)),
                       "--manifest", str(tmp / ("%s.json" % version)))["name"]


def reset_and_boot(dev, timeout=30):
    """The device resets itself after installing (the unix build exits); boot it again."""
    dev.proc.wait(timeout)
    dev._out.close()
    return dev.start()


def checks(fleet, device_id):
    return [r["status"] for r in logged_requests(fleet, "/api/devices/%s/update" % device_id)]


def test_canary_promotes_on_commit_and_a_rollback_halts(tmp_path):
    fleet = Fleet(tmp_path, {"ntp_servers": ["127.0.0.1:9"], "rollout_check_s": 0.5})
    devices = {}
    for device_id in ("canary-1", "other-1"):
        creds = fleet.provision(device_id, TENANT, NAMESPACE, "relays")
        (tmp_path / "config.json").write_text(json.dumps(CONFIG))
        fleet.admin("config-set", "--id", device_id, "--file", str(tmp_path / "config.json"))
        devices[device_id] = RoleDevice(tmp_path, "relays", device_id=device_id, device_key=creds["device_key"],
                                        api_key=creds["api_key"], tenant=TENANT, namespace=NAMESPACE,
                                        service_discovery_url=fleet.url + "/devices")
    fleet.start()
    admin = fleet.admin("token", "--tenant", TENANT, "--namespace", NAMESPACE, "--role", "admin")["token"]
    auth = {"Authorization": "Bearer " + admin}
    api = httpx.Client(base_url=fleet.url.rsplit("/api", 1)[0], headers=auth, timeout=10)
    canary, other = devices["canary-1"], devices["other-1"]

    def rollout(name):
        return api.get("/api/admin/rollouts/" + name).json()

    def push(device_id):
        assert api.post("/api/admin/devices/%s/actions" % device_id, json={"action": "check_update"}).status_code == 200

    try:
        for dev in devices.values():
            dev.start()
        wait_until("both online", lambda: api.get("/api/admin/devices", params={"online": True}).json()["total"] == 2,
                 timeout=30)
        wait_until("boot checks", lambda: checks(fleet, "canary-1") and checks(fleet, "other-1"))

        first = publish(fleet, tmp_path, "99.0.0")
        res = api.post("/api/admin/rollouts", json={"name": "r1", "artifact": first, "canaries": ["canary-1"],
                                                    "window_s": 2, "deadline_s": 300})
        assert res.status_code == 201 and res.json()["state"] == "canary", res.text
        assert api.post("/api/admin/rollouts", json={"name": "r1b", "artifact": first,
                                                     "canaries": ["ghost"]}).status_code == 409
        push("other-1")
        wait_until("other-1 is not offered it", lambda: checks(fleet, "other-1")[-1:] == [204] and
                 len(checks(fleet, "other-1")) == 2, timeout=20)
        push("canary-1")
        reset_and_boot(canary)  # installed 99.0.0, reset, now on trial
        wait_until("canary on trial", lambda: rollout("r1")["progress"]["canary-1"] == "trial", timeout=20)
        assert rollout("r1")["state"] == "canary"

        wait_until("canary ready", lambda: httpx.get(canary.url + "/health/readyz", timeout=5).status_code == 200)
        res = httpx.post(canary.url + "/ota/commit", headers=auth, timeout=10)
        assert res.status_code == 200 and res.json()["ok"], res.text
        wait_until("promoted", lambda: rollout("r1")["state"] == "promoted", timeout=30)
        r1 = rollout("r1")
        assert r1["progress"] == {"canary-1": "committed"} and "committed" in r1["reason"]

        push("other-1")  # promoted: now the other device takes it too
        reset_and_boot(other)
        assert checks(fleet, "other-1")[-1] == 200, checks(fleet, "other-1")
        state = httpx.get(other.url + "/ota/state", headers=auth, timeout=5).json()
        assert state["running_version"] == "99.0.0" and state["trial"], state

        # a second rollout, and the canary rolls back: it halts, and nobody else is offered it
        second = publish(fleet, tmp_path, "99.0.1")
        assert api.post("/api/admin/rollouts", json={"name": "r2", "artifact": second, "canaries": ["canary-1"],
                                                     "window_s": 2, "deadline_s": 300}).status_code == 201
        push("canary-1")
        reset_and_boot(canary)
        wait_until("r2 canary on trial", lambda: rollout("r2")["progress"]["canary-1"] == "trial", timeout=20)
        res = httpx.post(canary.url + "/ota/rollback", headers=auth, timeout=10)
        assert res.status_code == 200 and res.json()["to"] == "99.0.0", res.text
        assert api.post("/api/admin/devices/canary-1/actions", json={"action": "reboot"}).status_code == 200
        reset_and_boot(canary)
        wait_until("halted", lambda: rollout("r2")["state"] == "halted", timeout=30)
        assert rollout("r2")["reason"] == "canary canary-1 rolled back to 99.0.0"
        before = len(checks(fleet, "other-1"))
        push("other-1")
        wait_until("other-1 checked", lambda: len(checks(fleet, "other-1")) > before, timeout=20)
        assert checks(fleet, "other-1")[-1] == 204  # halted: 99.0.1 goes to nobody
        audit = [e["action"] for e in api.get("/api/admin/audit", params={"action": "rollout."}).json()["entries"]]
        assert audit == ["rollout.halted", "rollout.create", "rollout.promoted", "rollout.create"]
    finally:
        api.close()
        for dev in devices.values():
            if dev.proc is not None and not dev._out.closed:
                dev.stop()
        fleet.stop()
