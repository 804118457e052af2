"""Challenge, registration and heartbeat, as the device firmware uses them."""

import re

import jwt

from fleet_devtools.fleet_harness import Device, FleetServer, admin_json, assert_error, new_id, registration_body, run_admin


def _provision(server, **kw):
    return admin_json(server.db, "provision", "--id", kw.get("id", new_id()), "--tenant", kw.get("tenant", "acme"),
                      "--namespace", kw.get("namespace", "plant1"), "--role", "relays")


def _nonce(client, device_id):
    res = client.post(f"/api/devices/{device_id}/challenge", json={})  # the firmware sends an empty object
    assert res.status_code == 200, res.text
    return res.json()


def test_challenge_returns_single_use_hex_nonce(server):
    prov = _provision(server)
    with server.client() as c:
        body = _nonce(c, prov["device_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["nonce"])
    assert body["expires_in"] == 60


# an unknown id gets a nonce like a known one (ids cannot be enumerated): test_hardening.py


def test_registration_returns_device_token_and_services(server):
    dev = Device(server)
    reg = dev.registration
    claims = jwt.decode(reg["token"], options={"verify_signature": False})
    assert claims["sub"] == dev.id and claims["tenant"] == "acme" and claims["namespace"] == "plant1"
    assert claims["typ"] == "device" and claims["exp"] - claims["iat"] == 3600
    assert reg["expires_in"] == 3600 and reg["expires_at"] == claims["exp"]
    assert reg["services"] == {name: f"{server.url}/api" for name in ("config", "state", "alarms", "updates")}
    assert reg["ntp_servers"] == ["pool.ntp.org"] and reg["heartbeat_s"] == 30


def _ask_for_key(server, prov, **overrides):
    with server.client() as c:
        return c.post("/api/devices", json=registration_body(prov, _nonce(c, prov["device_id"])["nonce"],
                                                             want_api_key=True, **overrides))


def test_the_api_key_is_not_sent_in_the_clear(server):
    # plain HTTP (the shared server): a device asking for its tenant's key gets a clear refusal
    prov = _provision(server, tenant="default", namespace="default")
    with server.client() as c:
        plain = c.post("/api/devices", json=registration_body(prov, _nonce(c, prov["device_id"])["nonce"]))
    asked = _ask_for_key(server, prov)
    assert plain.status_code == 200 and "api_key" not in plain.json()
    assert_error(asked, 403, "only over HTTPS")
    assert prov["api_key"] not in asked.text


def test_a_device_without_its_api_key_is_sent_it_on_registration_when_it_asks(tmp_db, tmp_path):
    # a development fleet on a trusted network says so (api_key_over_http); over HTTPS it needs
    # nothing (test_tls.py). iotlib's default tenant and namespace are an ordinary binding.
    config = tmp_path / "fleet.json"
    config.write_text('{"api_key_over_http": true}')
    server = FleetServer(tmp_db, "--config", str(config)).start()
    try:
        prov = _provision(server, tenant="default", namespace="default")
        asked = _ask_for_key(server, prov)
        wrong = _ask_for_key(server, prov, proof="00" * 32)
        assert asked.status_code == 200 and asked.json()["api_key"] == prov["api_key"]
        assert_error(wrong, 401, "proof")
        assert "api_key" not in wrong.text
        # after a rotation the device is sent the key that signs tokens from now on
        rotated = admin_json(server.db, "rotate-tenant-key", "--tenant", "default", "--grace", "0")
        again = _ask_for_key(server, prov)
        assert again.json()["api_key"] == rotated["api_key"] != prov["api_key"]
    finally:
        assert server.stop() == 0


def test_wrong_proof_is_401(server):
    prov = _provision(server)
    with server.client() as c:
        nonce = _nonce(c, prov["device_id"])["nonce"]
        res = c.post("/api/devices", json=registration_body(prov, nonce, proof="00" * 32))
    assert_error(res, 401, "proof")


def test_replayed_nonce_is_401(server):
    prov = _provision(server)
    with server.client() as c:
        nonce = _nonce(c, prov["device_id"])["nonce"]
        body = registration_body(prov, nonce)
        assert c.post("/api/devices", json=body).status_code == 200
        assert_error(c.post("/api/devices", json=body), 401, "nonce")


def test_unknown_nonce_and_nonce_of_another_device_are_401(server):
    a, b = _provision(server), _provision(server)
    with server.client() as c:
        assert_error(c.post("/api/devices", json=registration_body(a, "ab" * 16)), 401)
        nonce_for_b = _nonce(c, b["device_id"])["nonce"]
        assert_error(c.post("/api/devices", json=registration_body(a, nonce_for_b)), 401)


def test_tenant_or_namespace_other_than_provisioned_is_403(server):
    prov = _provision(server)
    with server.client() as c:
        for field, value in (("tenant", "other"), ("namespace", "plant9")):
            nonce = _nonce(c, prov["device_id"])["nonce"]
            assert_error(c.post("/api/devices", json=registration_body(prov, nonce, **{field: value})), 403)


def test_bad_registration_body_is_400_with_field_path(server):
    prov = _provision(server)
    with server.client() as c:
        nonce = _nonce(c, prov["device_id"])["nonce"]
        body = registration_body(prov, nonce, port="eighty")
        assert_error(c.post("/api/devices", json=body), 400, "body.port")
        del body["proof"]
        assert_error(c.post("/api/devices", json=body), 400, "body.proof")
        assert_error(c.post("/api/devices", content=b"{not json", headers={"content-type": "application/json"}),
                     400)
        # the 400s consumed nothing: the nonce still registers
        assert c.post("/api/devices", json=registration_body(prov, nonce)).status_code == 200


def test_heartbeat_is_stored_and_delivers_queued_actions_once(server, device):
    beat = {"uptime_s": 12, "free_heap": 81234, "health": {"wifi": "ok"}, "boot_count": 3}
    with device.client() as c:
        res = c.post(f"/api/devices/{device.id}/heartbeat", json=beat)
        assert res.status_code == 200 and res.json() == {"ok": True, "actions": []}
        admin_json(server.db, "action", "--id", device.id, "reboot")
        admin_json(server.db, "action", "--id", device.id, "refresh_token")
        admin_json(server.db, "action", "--id", device.id, "check_update")
        assert c.post(f"/api/devices/{device.id}/heartbeat", json=beat).json()["actions"] == [
            "reboot", "refresh_token", "check_update"]
        assert c.post(f"/api/devices/{device.id}/heartbeat", json=beat).json()["actions"] == []
    stored = admin_json(server.db, "heartbeat", "--id", device.id)["heartbeat"]
    assert stored["uptime_s"] == 12 and stored["free_heap"] == 81234 and stored["boot_count"] == 3


def test_bad_heartbeat_is_400_and_stores_nothing(server, device):
    with device.client() as c:
        res = c.post(f"/api/devices/{device.id}/heartbeat", json={"uptime_s": -1, "free_heap": 5, "health": {}})
    assert_error(res, 400, "body.uptime_s")
    assert admin_json(server.db, "heartbeat", "--id", device.id)["heartbeat"] is None


def test_heartbeat_needs_own_device_token(server, device):
    other = Device(server)
    beat = {"uptime_s": 1, "free_heap": 1, "health": {}}
    with server.client() as anon:
        assert_error(anon.post(f"/api/devices/{device.id}/heartbeat", json=beat), 401, "missing")
    with server.client("not-a-jwt") as bad:
        assert_error(bad.post(f"/api/devices/{device.id}/heartbeat", json=beat), 401)
    with other.client() as c:
        assert_error(c.post(f"/api/devices/{device.id}/heartbeat", json=beat), 403)
        assert_error(c.post("/api/devices/never-provisioned/heartbeat", json=beat), 403)


def test_invalid_action_is_rejected_by_cli(server, device):
    res = run_admin(server.db, "action", "--id", device.id, "selfdestruct")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
