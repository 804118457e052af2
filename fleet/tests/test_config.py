"""Versioned device configuration: CLI writes (validated), device reads with ETag."""

import json

import pytest
from pydantic import ValidationError

from fleet_server.api_error import validation_detail
from fleet_server.device_config import validate_config

from fleet_devtools.fleet_harness import Device, admin_json, api_token, assert_error, registration_body, run_admin

GOOD = {
    "log_level": "DEBUG", "heartbeat_s": 10, "ntp_servers": ["127.0.0.1"],
    "relays": {"pump": {"pin": 2, "schedule": [{"on": "06:00", "off": "06:30:15"}, {"on": "23:00", "off": "01:00"}]},
               "valve": {"pin": 3, "active_low": True, "safe_state": "HIGH", "max_on_s": 60}},
    "interlocks": [["pump", "valve"]],
    "sensors": {"fields": {"t": {"source": "temp", "rate_hz": 1.0, "threshold_high": 70.0}}, "max_clients": 2},
    "rate_limit": {"per_token_rps": 5, "per_address_rps": 10.5, "burst": 3},
    "rbac": {"roles": {"viewer": ["relays:read"]}}, "mask_fields": ["password"],
    "enabled_components": {"relays": True},
}


def _set(server, device, tmp_path, cfg):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return run_admin(server.db, "config-set", "--id", device.id, "--file", str(path))


def test_config_starts_empty_at_version_0(device):
    with device.client() as c:
        res = c.get(f"/api/devices/{device.id}/config")
    assert res.status_code == 200 and res.json() == {"version": 0, "config": {}}
    assert res.headers["etag"] == '"0"'


def test_config_set_bumps_version_and_etag_gives_304(server, device, tmp_path):
    assert _set(server, device, tmp_path, GOOD).returncode == 0
    assert admin_json(server.db, "config-get", "--id", device.id)["version"] == 1
    with device.client() as c:
        res = c.get(f"/api/devices/{device.id}/config")
        assert res.status_code == 200 and res.json() == {"version": 1, "config": GOOD | {
            "rate_limit": {"per_token_rps": 5.0, "per_address_rps": 10.5, "burst": 3}}}
        assert res.headers["etag"] == '"1"'
        unchanged = c.get(f"/api/devices/{device.id}/config", headers={"If-None-Match": '"1"'})
        assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == '"1"'
        assert c.get(f"/api/devices/{device.id}/config", headers={"If-None-Match": '"0"'}).status_code == 200
    assert _set(server, device, tmp_path, {"log_level": "ERROR"}).returncode == 0
    with device.client() as c:
        res = c.get(f"/api/devices/{device.id}/config", headers={"If-None-Match": '"1"'})
        assert res.status_code == 200 and res.json() == {"version": 2, "config": {"log_level": "ERROR"}}


INVALID = [
    ({"colour": "red"}, "colour"),
    ({"heartbeat_s": 2}, "heartbeat_s"),
    ({"heartbeat_s": "30"}, "heartbeat_s"),
    ({"log_level": "TRACE"}, "log_level"),
    ({"relays": {"pump": {"pin": 29}}}, "relays.pump.pin"),
    ({"relays": {"pump": {"pin": 1, "safe_state": "OFF"}}}, "relays.pump.safe_state"),
    ({"relays": {"pump": {"pin": 1}}, "interlocks": [["pump", "ghost"]]}, "interlocks"),
    ({"sensors": {"fields": {"t": {"source": "adc7", "rate_hz": 1}}}}, "sensors.fields.t.source"),
    ({"sensors": {"fields": {"t": {"source": "adc0", "rate_hz": 2000}}}}, "sensors.fields.t.rate_hz"),
    ({"sensors": {"fields": {}, "max_clients": 17}}, "sensors.max_clients"),
    ({"rate_limit": {"per_token_rps": 0, "per_address_rps": 1, "burst": 1}}, "rate_limit.per_token_rps"),
    ({"relays": {"pump": {"pin": 1, "schedule": [{"on": "6:00", "off": "07:00"}]}}}, "relays.pump.schedule.0.on"),
    ({"relays": {"pump": {"pin": 1, "schedule": [{"on": "06:00", "off": "24:00"}]}}}, "relays.pump.schedule.0.off"),
    ({"relays": {"pump": {"pin": 1, "schedule": [{"on": "06:00", "off": "06:00:00"}]}}}, "relays.pump.schedule.0.off"),
    ({"relays": {"pump": {"pin": 1, "schedule": [{"on": "06:00"}]}}}, "relays.pump.schedule.0.off"),
    ({"relays": {"pump": {"pin": 1, "schedule": [{"on": "06:00", "off": "07:00"}] * 5}}}, "relays.pump.schedule"),
]


@pytest.mark.parametrize("cfg,path", INVALID, ids=[p for _, p in INVALID])
def test_schema_rejects_with_field_path(cfg, path):
    with pytest.raises(ValidationError) as info:
        validate_config(cfg)
    assert path in validation_detail(info.value.errors())


def test_invalid_config_is_rejected_by_cli_with_field_path_and_nothing_stored(server, device, tmp_path):
    for cfg, path in (INVALID[0], INVALID[4], INVALID[6]):
        res = _set(server, device, tmp_path, cfg)
        assert res.returncode == 2, cfg
        assert path in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert admin_json(server.db, "config-get", "--id", device.id) == {"device_id": device.id, "version": 0,
                                                                      "config": {}}


def test_registration_hands_out_configured_heartbeat_and_ntp(server, tmp_path):
    dev = Device(server)
    assert _set(server, dev, tmp_path, {"heartbeat_s": 15, "ntp_servers": ["10.0.0.1"]}).returncode == 0
    with server.client() as c:  # the device registers again, e.g. after a reboot
        nonce = c.post(f"/api/devices/{dev.id}/challenge").json()["nonce"]
        reg = c.post("/api/devices", json=registration_body(dev.prov, nonce)).json()
    assert reg["heartbeat_s"] == 15 and reg["ntp_servers"] == ["10.0.0.1"]


def test_config_access_rules(server, device):
    other_tenant = Device(server, tenant="globex")
    with other_tenant.client() as c:
        assert_error(c.get(f"/api/devices/{device.id}/config"), 403)
    admin = api_token(server.db, device.tenant, device.namespace)
    with server.client(admin) as c:
        assert c.get(f"/api/devices/{device.id}/config").status_code == 200
        assert_error(c.get("/api/devices/unknown-device/config"), 404)
    wrong_ns = api_token(server.db, device.tenant, "plant2")
    with server.client(wrong_ns) as c:
        assert_error(c.get(f"/api/devices/{device.id}/config"), 403)
    foreign = api_token(server.db, "globex", "plant1")
    with server.client(foreign) as c:
        assert_error(c.get(f"/api/devices/{device.id}/config"), 403)
