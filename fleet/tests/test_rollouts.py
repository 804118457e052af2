"""Staged rollouts on the server: who is offered what, and each reason a rollout halts by itself.
Canaries here are registered test devices whose heartbeats the test writes (the unix-device run is
tests/system/test_rollout_e2e.py)."""

import base64
import hashlib
import json
import time

import pytest

from fleet_devtools.fleet_harness import Device, FleetServer, api_token, assert_error, new_id


@pytest.fixture(scope="module")
def site(tmp_path_factory, module_db):
    tmp = tmp_path_factory.mktemp("rollouts")
    cfg = tmp / "settings.json"
    cfg.write_text(json.dumps({"rollout_check_s": 0.2}))
    srv = FleetServer(module_db, "--config", str(cfg), log_dir=tmp).start()
    yield srv
    assert srv.stop() == 0


def _publish(c, version):
    data = f"bundle {version}".encode()
    manifest = {"kind": "bundle", "version": version, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "signature": "s"}
    res = c.post("/api/admin/artifacts", json={"manifest": manifest, "data_base64": base64.b64encode(data).decode()})
    assert res.status_code == 201, res.text
    return res.json()["name"]


def _beat(dev, version, trial=False, safe_mode=False):
    with dev.client() as c:
        assert c.post(f"/api/devices/{dev.id}/heartbeat", json={
            "uptime_s": 1, "free_heap": 1, "health": {}, "firmware_version": version, "safe_mode": safe_mode,
            "ota": {"trial": trial}}).status_code == 200


def _offer(dev, version="1.0.0"):
    with dev.client() as c:
        res = c.get(f"/api/devices/{dev.id}/update", params={"version": version})
    return None if res.status_code == 204 else res.json()["version"]


def _wait_for(get, ok, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = get()
        if ok(value):
            return value
        time.sleep(0.1)
    raise AssertionError(value)


def _wait_state(c, name, state):
    return _wait_for(lambda: c.get(f"/api/admin/rollouts/{name}").json(), lambda r: r["state"] == state)


def _fleet(site, n=2):
    tenant = new_id("t")
    devices = [Device(site, tenant=tenant) for _ in range(n)]
    return tenant, devices, site.client(api_token(site.db, tenant, "plant1"))


def test_only_canaries_are_offered_until_promotion(site):
    tenant, (canary, other), c = _fleet(site)
    with c:
        name = _publish(c, "2.0.0")
        assert_error(c.post("/api/admin/rollouts", json={"name": "r", "artifact": name}), 400, "canaries or percentage")
        assert_error(c.post("/api/admin/rollouts", json={"name": "r", "artifact": name, "canaries": ["ghost"]}), 400,
                     "ghost")
        assert_error(c.post("/api/admin/rollouts", json={"name": "r", "artifact": "nope", "canaries": [canary.id]}),
                     404)
        r = c.post("/api/admin/rollouts", json={"name": new_id("r"), "artifact": name, "canaries": [canary.id],
                                                "window_s": 0})
        assert r.status_code == 201, r.text
        rid = r.json()["name"]
        assert (_offer(canary), _offer(other)) == ("2.0.0", None)
        _beat(canary, "2.0.0", trial=True)
        on_trial = _wait_for(lambda: c.get(f"/api/admin/rollouts/{rid}").json(),
                             lambda r: r["progress"] == {canary.id: "trial"})
        assert on_trial["state"] == "canary"
        _beat(canary, "2.0.0")
        promoted = _wait_state(c, rid, "promoted")
        assert promoted["progress"] == {canary.id: "committed"}
        assert _offer(other) == "2.0.0"


@pytest.mark.parametrize("failure", ["rollback", "safe_mode", "critical_alarm", "deadline", "operator"])
def test_a_rollout_halts_by_itself(site, failure):
    tenant, (canary, other), c = _fleet(site)
    with c:
        name = _publish(c, "3.0.0")
        rid = new_id("r")
        deadline = 1 if failure == "deadline" else 300
        assert c.post("/api/admin/rollouts", json={"name": rid, "artifact": name, "canaries": [canary.id],
                                                   "window_s": 60, "deadline_s": deadline}).status_code == 201
        _beat(canary, "3.0.0", trial=True)
        _wait_for(lambda: c.get(f"/api/admin/rollouts/{rid}").json(),
                  lambda r: r["progress"] == {canary.id: "trial"} or r["state"] == "halted")
        if failure == "rollback":
            _beat(canary, "1.0.0")
            reason = f"canary {canary.id} rolled back to 1.0.0"
        elif failure == "safe_mode":
            _beat(canary, "3.0.0", safe_mode=True)
            reason = f"canary {canary.id} is in safe mode"
        elif failure == "critical_alarm":
            now = time.time()
            with canary.client() as dc:
                dc.post("/api/alarms", json={"device_id": canary.id, "alarms": [
                    {"type": "task_crashed", "severity": "critical", "source": "x", "count": 1,
                     "first_seen": now, "last_seen": now}]})
            reason = f"canary {canary.id} raised critical alarm task_crashed"
        elif failure == "deadline":
            reason = "canaries did not commit within 1 s"
        else:
            assert c.post(f"/api/admin/rollouts/{rid}/halt").status_code == 200
            assert_error(c.post(f"/api/admin/rollouts/{rid}/halt"), 409)
            reason = "halted by admin"
        halted = _wait_state(c, rid, "halted")
        assert halted["reason"] == reason
        assert (_offer(canary), _offer(other)) == (None, None)  # halted: offered to nobody


def test_percentage_picks_a_stable_share_and_the_console_shows_rollouts(site):
    tenant, devices, c = _fleet(site, n=4)
    with c:
        name = _publish(c, "4.0.0")
        r = c.post("/api/admin/rollouts", json={"name": "pct-" + tenant, "artifact": name, "percentage": 50}).json()
        assert len(r["canaries"]) == 2 and set(r["canaries"]) <= {d.id for d in devices}
        assert sorted(d.id for d in devices if _offer(d)) == r["canaries"]
        token = c.headers["Authorization"].split()[1]
    with site.client() as anon:
        anon.post("/console/login", data={"token": token})
        page = anon.get("/console/rollouts")
        assert page.status_code == 200 and f'id="rollout-pct-{tenant}"' in page.text and ">canary<" in page.text
