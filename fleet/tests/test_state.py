"""Reported state from the device, desired state from API callers, both versioned."""

import json

from fleet_devtools.fleet_harness import Device, admin_json, api_token, assert_error


def test_first_report_moves_version_0_to_1_and_returns_desired(device):
    with device.client() as c:
        res = c.put(device.state_path, json={"reported": {"pump": "on"}, "version": 0})
        assert res.status_code == 200 and res.json() == {"version": 1, "desired": {}, "desired_version": 0}
        assert c.get(device.state_path).json() == {"desired": {}, "desired_version": 0,
                                                   "reported": {"pump": "on"}, "version": 1}


def test_stale_version_is_409_with_current_version(device):
    with device.client() as c:
        assert c.put(device.state_path, json={"reported": {"a": 1}, "version": 0}).status_code == 200
        body = assert_error(c.put(device.state_path, json={"reported": {"a": 2}, "version": 0}), 409)
        assert body["version"] == 1
        assert c.get(device.state_path).json()["reported"] == {"a": 1}


def test_admin_sets_desired_over_http_and_device_sees_it(server, device):
    admin = api_token(server.db, device.tenant, device.namespace, "admin")
    with server.client(admin) as c:
        res = c.put(device.state_path + "/desired", json={"desired": {"pump": "off"}})
        assert res.status_code == 200 and res.json()["desired_version"] == 1
        stale = c.put(device.state_path + "/desired", json={"desired": {"pump": "on"}, "desired_version": 0})
        assert assert_error(stale, 409)["version"] == 1
        assert c.get(device.state_path).json()["desired"] == {"pump": "off"}
    with device.client() as c:
        res = c.put(device.state_path, json={"reported": {"pump": "off"}, "version": 0})
        assert res.json() == {"version": 1, "desired": {"pump": "off"}, "desired_version": 1}


def test_desired_needs_state_write_permission(server, device):
    viewer = api_token(server.db, device.tenant, device.namespace, "viewer")
    with server.client(viewer) as c:
        assert_error(c.put(device.state_path + "/desired", json={"desired": {"x": 1}}), 403, "state:write")
    with device.client() as c:  # a device token cannot set its own desired state
        assert_error(c.put(device.state_path + "/desired", json={"desired": {"x": 1}}), 403)
        assert c.get(device.state_path).json()["desired_version"] == 0


def test_cli_state_set_desired_and_get(server, device, tmp_path):
    f = tmp_path / "desired.json"
    f.write_text(json.dumps({"valve": "open"}))
    out = admin_json(server.db, "state-set-desired", "--id", device.id, "--file", str(f))
    assert out["desired"] == {"valve": "open"} and out["desired_version"] == 1
    assert admin_json(server.db, "state-get", "--id", device.id)["desired"] == {"valve": "open"}


def test_wrong_tenant_namespace_or_device_is_403(server, device):
    other = Device(server)
    with device.client() as c:
        for path in (f"/api/tenants/globex/namespaces/{device.namespace}/devices/{device.id}/state",
                     f"/api/tenants/{device.tenant}/namespaces/plant2/devices/{device.id}/state",
                     other.state_path):
            assert_error(c.put(path, json={"reported": {}, "version": 0}), 403)
            assert_error(c.get(path), 403)
    Device(server, tenant="globex")  # provisioning creates the tenant, so it can mint tokens
    foreign_admin = api_token(server.db, "globex", device.namespace)
    with server.client(foreign_admin) as c:
        assert_error(c.get(device.state_path), 403)


def test_bad_state_body_is_400_and_stores_nothing(device):
    with device.client() as c:
        assert_error(c.put(device.state_path, json={"reported": [1, 2], "version": 0}), 400, "body.reported")
        assert_error(c.put(device.state_path, json={"reported": {}}), 400, "body.version")
        assert_error(c.put(device.state_path, json={"reported": {}, "version": -1}), 400, "body.version")
        assert c.get(device.state_path).json()["version"] == 0


def test_state_without_token_is_401(server, device):
    with server.client() as c:
        assert_error(c.get(device.state_path), 401)
