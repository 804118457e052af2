"""The admin HTTP API: inventory, provisioning, config, actions, roles, tokens, publishing, audit; and
`fleet-admin --url` as its client."""

import base64
import hashlib
import json
import subprocess
import time

import jwt
from prometheus_client.parser import text_string_to_metric_families

from fleet_devtools.fleet_harness import (BIN, Device, FleetServer, api_token, assert_error, new_id, registration_body)
from fleet_server.storage import open_storage

BEAT = {"uptime_s": 42, "free_heap": 150000, "health": {"ok": True, "checks": {"wifi": True}}, "boot_count": 3,
        "firmware_version": "1.2.0", "image": {"wireless": True, "variant": "RELAYS"}, "safe_mode": False,
        "ota": {"trial": False, "version": "1.2.0"}}


def _tenant():
    return new_id("tenant")


def _beat(device, **over):
    with device.client() as c:
        res = c.post(f"/api/devices/{device.id}/heartbeat", json=dict(BEAT, **over))
        assert res.status_code == 200, res.text


def test_inventory_shows_heartbeat_fields_online_state_filters_and_paging(server):
    tenant = _tenant()
    relays, sensors = Device(server, tenant=tenant), Device(server, tenant=tenant, role="sensors")
    elsewhere = Device(server, tenant=tenant, namespace="other")
    _beat(relays)
    with relays.client() as c:
        c.post("/api/alarms", json={"device_id": relays.id, "alarms": [
            {"type": "overtemp", "severity": "critical", "source": "t", "count": 1, "first_seen": 1.0,
             "last_seen": 2.0}]})
    with server.client(api_token(server.db, tenant, "plant1", "viewer")) as c:
        page = c.get("/api/admin/devices").json()
        assert page["total"] == 2 and page["online"] == 1 and elsewhere.id not in {d["id"] for d in page["devices"]}
        item = {d["id"]: d for d in page["devices"]}[relays.id]
        assert item["online"] is True and item["firmware_version"] == "1.2.0" and item["image"]["wireless"] is True
        assert (item["uptime_s"], item["free_heap"], item["boot_count"], item["safe_mode"]) == (42, 150000, 3, False)
        assert item["open_alarms"] == 1 and item["highest_open_severity"] == "critical"
        assert item["address"] == "127.0.0.1" and time.time() - item["last_heartbeat"] < 30
        other = {d["id"]: d for d in page["devices"]}[sensors.id]
        assert other["online"] is False and other["last_heartbeat"] is None
        assert [d["id"] for d in c.get("/api/admin/devices", params={"online": True}).json()["devices"]] == [relays.id]
        assert [d["id"] for d in c.get("/api/admin/devices", params={"online": False}).json()["devices"]] == [sensors.id]
        assert [d["id"] for d in c.get("/api/admin/devices", params={"role": "sensors"}).json()["devices"]] == [sensors.id]
        ids = sorted([relays.id, sensors.id])
        second = c.get("/api/admin/devices", params={"limit": 1, "offset": 1}).json()
        assert [d["id"] for d in second["devices"]] == ids[1:] and second["total"] == 2
        assert_error(c.get("/api/admin/devices", params={"limit": 0}), 400, "query.limit")
        assert_error(c.get(f"/api/admin/devices/{elsewhere.id}"), 403)
        assert_error(c.get("/api/admin/devices/ghost"), 404)
        assert_error(c.post("/api/admin/devices", json={"id": new_id(), "role": "relays"}), 403, "devices:admin")
    with relays.client() as c:  # a device token is not an admin
        assert_error(c.get("/api/admin/devices"), 403)
    with server.client() as c:
        assert_error(c.get("/api/admin/devices"), 401)


def test_offline_after_the_configured_threshold_and_fleet_gauges(tmp_path):
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"offline_after_s": 2}))
    srv = FleetServer(tmp_path / "fleet.sqlite", "--config", str(cfg)).start()
    try:
        dev = Device(srv, tenant="gauges")
        _beat(dev)
        with dev.client() as c:
            c.post("/api/alarms", json={"device_id": dev.id, "alarms": [
                {"type": "x", "severity": "warning", "source": "s", "count": 2, "first_seen": 1.0, "last_seen": 2.0}]})
        admin = api_token(srv.db, "gauges", "plant1")
        with srv.client(admin) as c:
            assert c.get(f"/api/admin/devices/{dev.id}").json()["online"] is True
            samples = _samples(c.get("/metrics").text)
            assert samples[("fleet_devices_online", (("role", "relays"), ("tenant", "gauges")))] == 1
            assert samples[("fleet_alarms_open", (("severity", "warning"), ("tenant", "gauges")))] == 1
            assert samples[("fleet_alarms_open", (("severity", "critical"), ("tenant", "gauges")))] == 0
            time.sleep(2.3)
            assert c.get(f"/api/admin/devices/{dev.id}").json()["online"] is False
            assert ("fleet_devices_online", (("role", "relays"), ("tenant", "gauges"))) not in _samples(
                c.get("/metrics").text)
    finally:
        assert srv.stop() == 0


def _samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_provision_config_action_deprovision_through_the_api_are_audited(server):
    tenant = _tenant()
    Device(server, tenant=tenant)  # creates the tenant (bootstrap)
    admin = api_token(server.db, tenant, "plant1")
    device_id = new_id()
    with server.client(admin) as c:
        res = c.post("/api/admin/devices", json={"id": device_id, "role": "sensors"})
        assert res.status_code == 201, res.text
        prov = res.json()
        assert prov["tenant"] == tenant and prov["namespace"] == "plant1" and len(prov["device_key"]) == 64
        assert_error(c.post("/api/admin/devices", json={"id": device_id, "role": "sensors"}), 409)
        assert_error(c.post("/api/admin/devices", json={"id": new_id(), "role": "toaster"}), 400, "body.role")
        # the new device registers with what provisioning returned
        nonce = c.post(f"/api/devices/{device_id}/challenge").json()["nonce"]
        assert c.post("/api/devices", json=registration_body(prov, nonce)).status_code == 200

        bad = {"relays": {"heater": {"pin": 40}}}
        assert_error(c.put(f"/api/admin/devices/{device_id}/config", json=bad), 400, "relays.heater.pin")
        assert c.get(f"/api/devices/{device_id}/config").json()["version"] == 0  # nothing stored
        res = c.put(f"/api/admin/devices/{device_id}/config", json={"heartbeat_s": 10})
        assert res.json() == {"device_id": device_id, "version": 1}

        assert c.post(f"/api/admin/devices/{device_id}/actions", json={"action": "reboot"}).json()["queued"] == "reboot"
        assert_error(c.post(f"/api/admin/devices/{device_id}/actions", json={"action": "explode"}), 400, "body.action")
        assert c.delete(f"/api/admin/devices/{device_id}").json() == {"device_id": device_id, "deprovisioned": True}
        assert_error(c.get(f"/api/admin/devices/{device_id}"), 404)
        assert_error(c.delete(f"/api/admin/devices/{device_id}"), 404)
        entries = c.get("/api/admin/audit").json()["entries"]
    actions = [(e["action"], e["target"]) for e in entries if e["target"] == device_id]
    assert actions == [("device.deprovision", device_id), ("device.action", device_id), ("config.set", device_id),
                       ("device.provision", device_id)]
    assert {e["actor"] for e in entries if e["target"] == device_id} == {"admin"}


def test_roles_tokens_and_api_key(server):
    tenant = _tenant()
    Device(server, tenant=tenant)
    admin = api_token(server.db, tenant, "plant1")
    with server.client(admin) as c:
        assert_error(c.put("/api/admin/tenant/roles/auditor", json={"permissions": ["Audit read"]}), 400,
                     "body.permissions.0")
        roles = c.put("/api/admin/tenant/roles/auditor", json={"permissions": ["audit:read", "devices:read"]}).json()
        assert roles["roles"]["auditor"] == ["audit:read", "devices:read"]
        tok = c.post("/api/admin/tokens", json={"role": "auditor", "ttl_s": 60, "sub": "eve"}).json()["token"]
        assert_error(c.post("/api/admin/tokens", json={"role": "nobody"}), 400, "unknown role")
        api_key = c.post("/api/admin/tenant/api-key").json()["api_key"]
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert (claims["sub"], claims["permissions"], claims["exp"] - claims["iat"]) == ("eve", ["audit:read",
                                                                                            "devices:read"], 60)
    with server.client(tok) as c:  # signed with the old key: refused after rotation
        assert_error(c.get("/api/admin/audit"), 401)
    fresh = jwt.encode(dict(claims, exp=int(time.time()) + 60), api_key, algorithm="HS256")
    with server.client(fresh) as c:
        assert c.get("/api/admin/audit").status_code == 200
        assert_error(c.get("/api/admin/tenant"), 403, "tenant:admin")


def test_publish_through_the_api(server):
    tenant = _tenant()
    dev = Device(server, tenant=tenant)
    data = b"bundle-bytes" * 100
    manifest = {"kind": "bundle", "version": "2.0.0", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "signature": "sig"}
    with server.client(api_token(server.db, tenant, "plant1")) as c:
        assert_error(c.post("/api/admin/artifacts", json={"manifest": dict(manifest, size=1),
                                                          "data_base64": base64.b64encode(data).decode()}), 400, "size")
        assert_error(c.post("/api/admin/artifacts", json={"manifest": manifest, "data_base64": "!!"}), 400, "base64")
        res = c.post("/api/admin/artifacts", json={"manifest": manifest, "data_base64": base64.b64encode(data).decode()})
        assert res.status_code == 201 and res.json()["version"] == "2.0.0"
    with dev.client() as c:
        offer = c.get(f"/api/devices/{dev.id}/update", params={"version": "1.0.0"}).json()
        assert offer["version"] == "2.0.0" and c.get(offer["url"]).content == data


def test_an_image_sized_artefact_passes_the_body_limit_and_an_oversized_one_is_413(server):
    # the general body limit (64 KB) is for device documents; an app image is hundreds of KB
    tenant = _tenant()
    Device(server, tenant=tenant)
    data = bytes(range(256)) * 1200  # 300 KB
    manifest = {"kind": "bundle", "version": "3.0.0", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "signature": "sig"}
    with server.client(api_token(server.db, tenant, "plant1")) as c:
        res = c.post("/api/admin/artifacts", json={"manifest": manifest, "data_base64": base64.b64encode(data).decode()})
        assert res.status_code == 201, res.text
        name = res.json()["name"]
        assert_error(c.post("/api/admin/artifacts", json={"manifest": manifest, "data_base64": "A" * (12 * 1024 * 1024)}),
                     413)
        assert_error(c.put("/api/admin/tenant/roles/x", json={"permissions": ["a:b"], "pad": "A" * 70000}), 413)
    store = open_storage(str(server.db))
    try:
        assert store.read_artifact(name, 0, len(data)) == data
    finally:
        store.close()


def _cli(server, token, *args):
    return subprocess.run([str(BIN / "fleet-admin"), "--url", server.url, "--token", token, *args],
                          capture_output=True, text=True, timeout=30)


def test_fleet_admin_is_a_client_of_the_api(server, tmp_path):
    tenant = _tenant()
    Device(server, tenant=tenant)
    admin = api_token(server.db, tenant, "plant1")
    device_id = new_id()
    res = _cli(server, admin, "provision", "--id", device_id, "--role", "relays")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["device_id"] == device_id
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"relays": {"heater": {"pin": 40}}}))
    res = _cli(server, admin, "config-set", "--id", device_id, "--file", str(cfg))
    assert res.returncode == 2 and "relays.heater.pin" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    desired = tmp_path / "desired.json"
    desired.write_text(json.dumps({"relays": {"r1": "HIGH"}}))
    res = _cli(server, admin, "state-set-desired", "--id", device_id, "--file", str(desired))
    assert res.returncode == 0 and json.loads(res.stdout)["desired"] == {"relays": {"r1": "HIGH"}}, res.stderr
    listed = json.loads(_cli(server, admin, "devices", "--online", "false").stdout)
    assert device_id in {d["id"] for d in listed["devices"]}
    res = _cli(server, admin, "provision", "--id", new_id(), "--role", "relays", "--tenant", "someone-else")
    assert res.returncode == 2 and "differs from the token" in res.stderr
    viewer = api_token(server.db, tenant, "plant1", "viewer")
    res = _cli(server, viewer, "action", "--id", device_id, "reboot")
    assert res.returncode == 2 and "403" in res.stderr and "devices:admin" in res.stderr
    audit = json.loads(_cli(server, admin, "audit", "--action", "state.").stdout)["entries"]
    assert [(e["action"], e["target"]) for e in audit] == [("state.desired", device_id)]
