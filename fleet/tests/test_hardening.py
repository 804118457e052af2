"""Issue 12, the fleet's half: body limits, number ranges, one error shape (500s too, in the
access log), `permissions` only narrowing, challenges that do not tell ids apart."""

from __future__ import annotations

import json
import sqlite3
import time

import jwt

from fleet_devtools.fleet_harness import Device, FleetServer, api_token, assert_error, new_id, registration_body
from fleet_server.storage import open_storage

MB = 1024 * 1024


def _alarm(**kw):
    a = {"type": "t", "severity": "warning", "source": "s", "count": 1, "first_seen": 1.0, "last_seen": 2.0}
    a.update(kw)
    return a


def _access_lines(srv: FleetServer, path: str) -> list[dict]:
    out = []
    for line in srv.stderr_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("logger") == "fleet.access" and rec.get("msg") == "request" and rec.get("path") == path:
            out.append(rec)
    return out


# -- 7: body limits and number ranges --------------------------------------------------


def test_oversized_bodies_are_413_in_the_error_shape_and_nothing_is_stored(server, device, admin_token):
    big = "x" * (10 * MB)
    with device.client() as c:
        res = c.post(f"/api/devices/{device.id}/heartbeat",
                     json={"uptime_s": 1, "free_heap": 1, "health": {"blob": big}})
        assert assert_error(res, 413)["error"] == "payload_too_large"
        alarms = [_alarm(type=f"t{i}") for i in range(60000)]
        assert_error(c.post("/api/alarms", json={"device_id": device.id, "alarms": alarms}), 413)
        # a streamed body (no Content-Length) is cut off the same way
        res = c.post("/api/alarms", content=iter([b"[" + b" " * MB] * 2),
                     headers={"Content-Type": "application/json"})
        assert_error(res, 413)
    with server.client(admin_token) as c:
        assert_error(c.put(device.state_path + "/desired", json={"desired": {"blob": big}}), 413)
        assert c.get(device.state_path).json()["desired"] == {}
        assert c.get("/api/alarms", params={"device_id": device.id}).json()["alarms"] == []


def test_numbers_out_of_range_are_400_naming_the_field_and_logged(server, device):
    with device.client() as c:
        res = c.post("/api/alarms", json={"device_id": device.id, "alarms": [_alarm(count=10**30)]})
        assert_error(res, 400, "count")
        res = c.post(f"/api/devices/{device.id}/heartbeat",
                     json={"uptime_s": 1, "free_heap": 1, "health": {"deep": [1, 2**70]}})
        assert_error(res, 400, "health.deep.1")
        # a big batch within the byte limit is refused by its length, not stored
        many = [_alarm(type=f"t{i}") for i in range(300)]
        assert_error(c.post("/api/alarms", json={"device_id": device.id, "alarms": many}), 400, "alarms")
    statuses = [r["status"] for r in _access_lines(server, "/api/alarms")]
    assert 400 in statuses and 500 not in statuses


def test_an_unexpected_failure_is_a_json_500_in_the_access_log(tmp_db):
    srv = FleetServer(tmp_db).start()
    try:
        dev = Device(srv)
        with sqlite3.connect(tmp_db) as db:  # storage breaks under the running server
            db.execute("DROP TABLE alarms")
        with dev.client() as c:
            res = c.post("/api/alarms", json={"device_id": dev.id, "alarms": [_alarm()]})
        assert res.status_code == 500
        assert res.headers["content-type"] == "application/json"
        assert res.json() == {"error": "internal", "detail": "internal error"}
        deadline = time.time() + 5
        while not _access_lines(srv, "/api/alarms") and time.time() < deadline:
            time.sleep(0.05)
        assert [r["status"] for r in _access_lines(srv, "/api/alarms")] == [500]
    finally:
        srv.stop()


# -- 8: permissions narrow a role, never widen it -------------------------------------


def test_permissions_claim_cannot_widen_a_role(server, device):
    key = device.prov["api_key"]
    now = int(time.time())

    def token(role, permissions):
        claims = {"sub": "mallory", "tenant": device.tenant, "namespace": device.namespace, "role": role,
                  "iss": "fleet", "aud": "iotlib", "iat": now, "exp": now + 600}
        if permissions is not None:
            claims["permissions"] = permissions
        return jwt.encode(claims, key, algorithm="HS256")

    desired = {"desired": {"relays": {"relay1": "HIGH"}}}
    with server.client(token("viewer", ["state:write", "relays:write"])) as c:
        assert_error(c.put(device.state_path + "/desired", json=desired), 403, "state:write")
    with server.client(token("nosuchrole", ["state:write"])) as c:
        assert_error(c.put(device.state_path + "/desired", json=desired), 403)
    # narrowing works: an admin token limited to alarms:read cannot write state
    with server.client(token("admin", ["alarms:read"])) as c:
        assert_error(c.put(device.state_path + "/desired", json=desired), 403)
    with server.client(token("admin", None)) as c:
        assert c.put(device.state_path + "/desired", json=desired).status_code == 200


# -- challenges ---------------------------------------------------------------------------


def _count_nonces(db, device_id=None) -> int:
    """Rows in the nonce table of the server's database (either backend)."""
    store = open_storage(str(db))
    try:
        if device_id is None:
            return store._one("SELECT COUNT(*) AS n FROM nonces")["n"]
        return store._one("SELECT COUNT(*) AS n FROM nonces WHERE device_id=?", (device_id,))["n"]
    finally:
        store.close()


def test_challenge_for_an_unknown_id_looks_like_a_known_one_and_stores_nothing(server):
    def nonces():
        return _count_nonces(server.db)
    before = nonces()
    with server.client() as c:
        res = c.post(f"/api/devices/{new_id('ghost')}/challenge")
        assert res.status_code == 200 and set(res.json()) == {"nonce", "expires_in"}
        for _ in range(200):
            c.post(f"/api/devices/{new_id('ghost')}/challenge")
    assert nonces() == before


def test_challenges_for_one_device_keep_only_a_few_nonces_and_the_newest_registers(server):
    prov = Device(server).prov
    with server.client() as c:
        got = [c.post(f"/api/devices/{prov['device_id']}/challenge").json()["nonce"] for _ in range(100)]
        assert _count_nonces(server.db, prov["device_id"]) <= 4
        assert_error(c.post("/api/devices", json=registration_body(prov, got[0])), 401)
        assert c.post("/api/devices", json=registration_body(prov, got[-1])).status_code == 200


def test_expired_nonces_are_swept(tmp_db, tmp_path):
    settings = tmp_path / "settings.json"
    # the housekeeping job sweeps them (no grace here, so the test need not wait an hour)
    settings.write_text(json.dumps({"nonce_ttl_s": 1, "nonce_grace_s": 0, "housekeeping_interval_s": 0.2}))
    srv = FleetServer(tmp_db, "--config", str(settings)).start()
    try:
        provs = [Device(srv).prov for _ in range(3)]
        with srv.client() as c:
            for p in provs:
                c.post(f"/api/devices/{p['device_id']}/challenge")
            assert _count_nonces(tmp_db) == 3
            time.sleep(1.2)
            c.post(f"/api/devices/{provs[0]['device_id']}/challenge")
        deadline = time.time() + 5
        while _count_nonces(tmp_db) != 1 and time.time() < deadline:
            time.sleep(0.1)
        assert _count_nonces(tmp_db) == 1
    finally:
        srv.stop()


def test_admin_token_still_works_end_to_end(server, device):
    # the narrowing rule keeps what fleet-admin mints working (its permissions = its role's)
    admin = api_token(server.db, device.tenant, device.namespace, "admin")
    with server.client(admin) as c:
        assert c.get("/api/alarms").status_code == 200
