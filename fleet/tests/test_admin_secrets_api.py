"""Secrets through the admin API: device and tenant key rotation with a grace period, the tenant's
secret audit trail, `fleet-admin --url` for them; and every mutating admin route writes the audit log."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time

from fleet_devtools.fleet_harness import BIN, Device, api_token, assert_error, new_id, proof, registration_body

GRACE_S = 2  # long enough for a few requests on a loaded machine, short enough to wait out


def _register(server, prov: dict, key: str):
    with server.client() as c:
        nonce = c.post(f"/api/devices/{prov['device_id']}/challenge").json()["nonce"]
        return c.post("/api/devices", json=registration_body(prov, nonce, proof=proof(key, nonce, prov["device_id"])))


def _audit(client, **params) -> list[dict]:
    res = client.get("/api/admin/audit", params=dict({"limit": 1000}, **params))
    assert res.status_code == 200, res.text
    return res.json()["entries"]


def _secret_audit(client, **params) -> list[dict]:
    res = client.get("/api/admin/secrets/audit", params=params)
    assert res.status_code == 200, res.text
    return res.json()["audit"]


def test_device_and_tenant_keys_rotate_through_the_api_with_a_grace_period(server):
    tenant = new_id("t")
    device = Device(server, tenant=tenant)
    old_key = device.prov["device_key"]
    old_token = api_token(server.db, tenant, device.namespace)  # signed with the tenant's old key
    with server.client(old_token) as c:
        res = c.post(f"/api/admin/devices/{device.id}/key", json={"grace_s": GRACE_S})
        assert res.status_code == 200, res.text
        dev_rot = res.json()
        res = c.post("/api/admin/tenant/api-key", json={"grace_s": GRACE_S})
        assert res.status_code == 200, res.text
        ten_rot = res.json()
        # the old token still works during the grace period: mint its successor through the API
        new_token = c.post("/api/admin/tokens", json={"role": "admin", "ttl_s": 600}).json()["token"]
    new_key = dev_rot["device_key"]
    assert dev_rot["device_id"] == device.id and new_key != old_key and len(new_key) == 64
    assert ten_rot["tenant"] == tenant and ten_rot["api_key"] != device.prov["api_key"]
    deadline = max(dev_rot["previous_key_accepted_until"], ten_rot["previous_key_accepted_until"])
    assert time.time() < deadline <= time.time() + GRACE_S + 1

    # in the grace period: old and new both accepted
    assert _register(server, device.prov, old_key).status_code == 200
    assert _register(server, device.prov, new_key).status_code == 200
    for token in (old_token, new_token):
        with server.client(token) as c:
            assert c.get(device.state_path).status_code == 200

    time.sleep(max(0.0, deadline - time.time()) + 0.2)
    assert_error(_register(server, device.prov, old_key), 401, "wrong proof")
    assert _register(server, device.prov, new_key).status_code == 200
    with server.client(old_token) as c:
        assert_error(c.get(device.state_path), 401)
    with server.client(new_token) as c:
        assert c.get(device.state_path).status_code == 200
        entries = _audit(c)
        rotations = [(e["action"], e["target"], e["actor"], e["detail"]["grace_s"]) for e in entries
                     if e["action"] in ("device.rotate_key", "tenant.rotate_api_key")]
        assert rotations == [("tenant.rotate_api_key", tenant, "admin", GRACE_S),
                             ("device.rotate_key", device.id, "admin", GRACE_S)]
        trail = _secret_audit(c, subject=f"device:{device.id}")
        assert [e["action"] for e in trail] == ["create_device_key", "rotate_device_key"]
        assert trail[1]["actor"].startswith("admin via fleet-server") and trail[1]["detail"]["grace_s"] == GRACE_S
        assert trail[1]["tenant"] == tenant
        assert [e["action"] for e in _secret_audit(c, subject=f"tenant:{tenant}")] == [
            "create_tenant_key", "rotate_api_key"]


def test_tenant_key_replaced_without_grace_refuses_the_old_key_at_once(server):
    tenant = new_id("t")
    device = Device(server, tenant=tenant)
    old_token = api_token(server.db, tenant, device.namespace)
    with server.client(old_token) as c:
        res = c.post("/api/admin/tenant/api-key")  # no body: grace_s 0, as before rotation had a grace
        assert res.status_code == 200, res.text
        out = res.json()
        assert out["previous_key_accepted_until"] <= time.time()
        assert_error(c.get(device.state_path), 401)
    new_token = api_token(server.db, tenant, device.namespace)
    with server.client(new_token) as c:
        trail = _secret_audit(c, subject=f"tenant:{tenant}")
        assert [e["action"] for e in trail] == ["create_tenant_key", "rotate_api_key"]
        assert trail[-1]["detail"]["grace_s"] == 0


def test_bad_rotation_requests_are_refused_and_change_nothing(server):
    tenant = new_id("t")
    device = Device(server, tenant=tenant)
    elsewhere = Device(server, tenant=tenant, namespace="other")
    stranger = Device(server, tenant=new_id("t"))
    admin = api_token(server.db, tenant, device.namespace)
    viewer = api_token(server.db, tenant, device.namespace, "viewer")
    path = f"/api/admin/devices/{device.id}/key"
    with server.client(admin) as c:
        for bad in (-1, "soon", 10 ** 9, None):
            assert_error(c.post(path, json={"grace_s": bad}), 400, "body.grace_s")
            assert_error(c.post("/api/admin/tenant/api-key", json={"grace_s": bad}), 400, "body.grace_s")
        for raw, reason in ((b'{"grace_s": NaN}', "grace_s"), (b'{"grace_s": Infinity}', "grace_s"), (b"[1]", "body")):
            assert_error(c.post(path, content=raw, headers={"content-type": "application/json"}), 400, reason)
        assert_error(c.post("/api/admin/devices/ghost/key", json={"grace_s": 1}), 404, "unknown device 'ghost'")
        assert_error(c.post(f"/api/admin/devices/{elsewhere.id}/key", json={"grace_s": 1}), 403)
        assert_error(c.post(f"/api/admin/devices/{stranger.id}/key", json={"grace_s": 1}), 403)
        assert_error(c.get("/api/admin/secrets/audit", params={"limit": 0}), 400, "query.limit")
        # nothing changed: no rotation in either trail, old keys still the only ones
        assert not [e for e in _audit(c) if "rotate" in e["action"]]
        assert [e["action"] for e in _secret_audit(c, subject=f"device:{device.id}")] == ["create_device_key"]
        assert [e["action"] for e in _secret_audit(c, subject=f"tenant:{tenant}")] == ["create_tenant_key"]
        # a tenant sees its own trail only
        assert _secret_audit(c, subject=f"device:{stranger.id}") == []
        assert {e["tenant"] for e in _secret_audit(c)} == {tenant}
    with server.client(viewer) as c:
        assert_error(c.post(path, json={"grace_s": 1}), 403, "devices:admin")
        assert_error(c.post("/api/admin/tenant/api-key", json={"grace_s": 1}), 403, "tenant:admin")
        assert_error(c.get("/api/admin/secrets/audit"), 403, "audit:read")
    with device.client() as c:  # a device token is not an admin
        assert_error(c.post(path, json={"grace_s": 1}), 403)
    assert _register(server, device.prov, device.prov["device_key"]).status_code == 200
    with server.client(admin) as c:
        assert c.get(device.state_path).status_code == 200


def _cli(server, token, *args):
    return subprocess.run([str(BIN / "fleet-admin"), "--url", server.url, "--token", token, *args],
                          capture_output=True, text=True, timeout=30)


def test_fleet_admin_rotates_keys_and_reads_the_secret_audit_through_the_api(server):
    tenant = new_id("t")
    device = Device(server, tenant=tenant)
    admin = api_token(server.db, tenant, device.namespace)
    res = _cli(server, admin, "rotate-device-key", "--id", device.id, "--grace", "60")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["device_id"] == device.id and 55 < out["previous_key_accepted_until"] - time.time() <= 60
    assert _register(server, device.prov, out["device_key"]).status_code == 200
    assert _register(server, device.prov, device.prov["device_key"]).status_code == 200  # in its grace

    res = _cli(server, admin, "rotate-tenant-key", "--grace", "60")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["tenant"] == tenant
    res = _cli(server, admin, "rotate-tenant-key", "--tenant", "someone-else")
    assert res.returncode == 2 and "differs from the token" in res.stderr
    res = _cli(server, admin, "rotate-device-key", "--id", device.id, "--grace", "-5")
    assert res.returncode == 2 and "400" in res.stderr and "grace_s" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = _cli(server, admin, "rotate-device-key", "--id", "ghost")
    assert res.returncode == 2 and "404" in res.stderr

    res = _cli(server, admin, "secrets-audit", "--subject", f"device:{device.id}")
    assert res.returncode == 0, res.stderr
    assert [e["action"] for e in json.loads(res.stdout)["audit"]] == ["create_device_key", "rotate_device_key"]
    res = _cli(server, admin, "secrets-audit")
    actions = [(e["action"], e["subject"]) for e in json.loads(res.stdout)["audit"]]
    assert actions[-2:] == [("rotate_device_key", f"device:{device.id}"), ("rotate_api_key", f"tenant:{tenant}")]
    res = _cli(server, admin, "secrets-reseal")
    assert res.returncode == 2 and "needs --db" in res.stderr


# ---- every admin action is audited -------------------------------------------------------------

MUTATING = ("post", "put", "patch", "delete")
DESIRED = "/api/tenants/{tenant}/namespaces/{namespace}/devices/{device_id}/state/desired"


def test_every_mutating_admin_route_writes_the_audit_log(server):
    """Walks the served OpenAPI document: each admin write (every POST/PUT/PATCH/DELETE under /api/admin,
    and the desired state) must be exercised here and leave an audit entry naming what it did."""
    tenant = new_id("t")
    device = Device(server, tenant=tenant)
    admin = api_token(server.db, tenant, device.namespace)
    fresh_id, hook, rollout = new_id(), new_id("hook"), new_id("ro")
    data = b"artefact" * 64
    manifest = {"kind": "bundle", "version": "9.0.0", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "signature": "sig"}
    alarm = {"type": "overtemp", "source": "t1"}
    with device.client() as c:  # an open alarm to acknowledge and clear
        res = c.post("/api/alarms", json={"device_id": device.id, "alarms": [
            dict(alarm, severity="warning", count=1, first_seen=1.0, last_seen=2.0)]})
        assert res.status_code == 200, res.text
    names = {"device_id": device.id, "tenant": tenant, "namespace": device.namespace, "role": "auditor",
             "name": hook}
    # (method, path as in the document, path values, request, audit action, audit target), in a workable order
    steps = [
        ("post", "/api/admin/devices", {}, {"json": {"id": fresh_id, "role": "sensors"}},
         "device.provision", fresh_id),
        ("put", "/api/admin/devices/{device_id}/config", {}, {"json": {"heartbeat_s": 10}}, "config.set", device.id),
        ("post", "/api/admin/devices/{device_id}/actions", {}, {"json": {"action": "reboot"}},
         "device.action", device.id),
        ("post", "/api/admin/devices/{device_id}/key", {}, {"json": {"grace_s": 600}}, "device.rotate_key", device.id),
        ("put", DESIRED, {}, {"json": {"desired": {"relays": {"r1": "HIGH"}}}}, "state.desired", device.id),
        ("put", "/api/admin/tenant/roles/{role}", {}, {"json": {"permissions": ["audit:read"]}}, "role.set", "auditor"),
        ("delete", "/api/admin/tenant/roles/{role}", {}, {}, "role.delete", "auditor"),
        ("post", "/api/admin/tokens", {}, {"json": {"role": "viewer", "sub": "walker"}}, "token.mint", "walker"),
        ("post", "/api/admin/artifacts", {}, {"json": {"manifest": manifest,
                                                        "data_base64": base64.b64encode(data).decode()}},
         "update.publish", None),
        ("post", "/api/admin/rollouts", {}, {"json": {"name": rollout, "artifact": "<published>",
                                                       "canaries": [device.id]}}, "rollout.create", rollout),
        ("post", "/api/admin/rollouts/{name}/halt", {"name": rollout}, {}, "rollout.halted", rollout),
        ("put", "/api/admin/webhooks/{name}", {}, {"json": {"url": "http://127.0.0.1:9/hook", "secret": "s" * 16,
                                                             "min_severity": "critical"}}, "webhook.set", hook),
        ("delete", "/api/admin/webhooks/{name}", {}, {}, "webhook.delete", hook),
        ("post", "/api/admin/alarms/acknowledge", {}, {"json": dict(alarm, device_id=device.id)},
         "alarm.acknowledged", f"{device.id}/overtemp/t1"),
        ("post", "/api/admin/alarms/clear", {}, {"json": dict(alarm, device_id=device.id)},
         "alarm.cleared", f"{device.id}/overtemp/t1"),
        ("delete", "/api/admin/devices/{device_id}", {"device_id": fresh_id}, {}, "device.deprovision", fresh_id),
        ("post", "/api/admin/tenant/api-key", {}, {"json": {"grace_s": 600}}, "tenant.rotate_api_key", tenant),
    ]
    with server.client() as c:
        doc = c.get("/openapi.json").json()
    writes = {(method, path) for path, item in doc["paths"].items() for method in item
              if method in MUTATING and (path.startswith("/api/admin/") or path == DESIRED)}
    assert {(m, p) for m, p, *_ in steps} == writes, "an admin write route is missing from this walk (or gone)"

    published = None
    with server.client(admin) as c:
        seen = max((e["seq"] for e in _audit(c)), default=0)
        for method, path, values, request, action, target in steps:
            if "json" in request and request["json"].get("artifact") == "<published>":
                request = {"json": dict(request["json"], artifact=published)}
            res = c.request(method.upper(), path.format(**dict(names, **values)), **request)
            assert res.status_code < 300, (method, path, res.status_code, res.text)
            if path == "/api/admin/artifacts":
                published = target = res.json()["name"]
            new = [e for e in _audit(c) if e["seq"] > seen]
            assert [(e["action"], e["target"]) for e in new if e["action"] == action] == [(action, target)], \
                (method, path, [(e["action"], e["target"]) for e in new])
            assert all(e["actor"] == "admin" for e in new if e["action"] == action)
            seen = max(e["seq"] for e in new)
