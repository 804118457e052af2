"""Components enabled by configuration: a disabled one is neither routed nor checked for readiness."""

import json

from fleet_devtools.fleet_harness import Device, FleetServer, assert_error


def test_disabled_components_are_not_routed_nor_in_readyz(tmp_path):
    cfg = tmp_path / "settings.json"
    cfg.write_text(json.dumps({"enabled_components": {"discovery": True, "config": True, "state": False,
                                                      "alarms": False, "updates": False}}))
    srv = FleetServer(tmp_path / "fleet.sqlite", "--config", str(cfg)).start()
    try:
        dev = Device(srv)
        assert dev.registration["services"] == {"config": f"{srv.url}/api"}
        with dev.client() as c:
            assert c.get(f"/api/devices/{dev.id}/config").status_code == 200
            assert_error(c.get(dev.state_path), 404)
            assert_error(c.post("/api/alarms", json={"device_id": dev.id, "alarms": []}), 404)
            assert_error(c.get(f"/api/devices/{dev.id}/update", params={"version": "1.0"}), 404)
            assert c.get("/health/readyz").json()["checks"] == {"discovery": "ok", "config": "ok"}
            paths = c.get("/openapi.json").json()["paths"]
            assert not any("state" in p or "alarms" in p or "update" in p for p in paths)
    finally:
        assert srv.stop() == 0


def test_components_flag_overrides_config_file(tmp_path):
    srv = FleetServer(tmp_path / "fleet.sqlite", "--components", "alarms").start()
    try:
        with srv.client() as c:
            assert c.get("/health/readyz").json()["checks"] == {"alarms": "ok"}
            assert_error(c.post("/api/devices/x/challenge"), 404)
    finally:
        assert srv.stop() == 0
