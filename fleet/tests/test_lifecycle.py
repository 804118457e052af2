"""Restarts keep data, tokens and nonces expire, shutdown is graceful, logs are JSON lines."""

import json
import signal
import time

from fleet_devtools.fleet_harness import Device, FleetServer, admin_json, api_token, assert_error, registration_body


def test_restart_keeps_everything(tmp_path, tmp_db):
    srv = FleetServer(tmp_db).start()
    dev = Device(srv)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"heartbeat_s": 60}))
    admin_json(tmp_db, "config-set", "--id", dev.id, "--file", str(cfg))
    with dev.client() as c:
        assert c.put(dev.state_path, json={"reported": {"on": True}, "version": 0}).status_code == 200
        alarm = {"type": "t", "severity": "info", "source": "s", "count": 1, "first_seen": 1, "last_seen": 2}
        assert c.post("/api/alarms", json={"device_id": dev.id, "alarms": [alarm]}).status_code == 200
        assert c.post(f"/api/devices/{dev.id}/heartbeat",
                      json={"uptime_s": 5, "free_heap": 6, "health": {}}).status_code == 200
    admin_json(tmp_db, "action", "--id", dev.id, "reboot")
    assert srv.stop() == 0

    srv.start()  # same database file, new process and port
    try:
        dev.server = srv
        with dev.client() as c:  # the device token issued before the restart is still valid
            assert c.get(f"/api/devices/{dev.id}/config").json() == {"version": 1, "config": {"heartbeat_s": 60}}
            assert c.get(dev.state_path).json()["reported"] == {"on": True}
            assert c.post(f"/api/devices/{dev.id}/heartbeat",
                          json={"uptime_s": 1, "free_heap": 6, "health": {}}).json()["actions"] == ["reboot"]
        with srv.client(api_token(tmp_db, dev.tenant, dev.namespace)) as c:
            assert [a["type"] for a in c.get("/alarms/").json()["alarms"]] == ["t"]
    finally:
        assert srv.stop() == 0


def test_expired_device_token_and_expired_nonce_are_401(tmp_db):
    srv = FleetServer(tmp_db, "--device-token-ttl", "1", "--nonce-ttl", "1").start()
    try:
        dev = Device(srv)
        assert dev.registration["expires_in"] == 1
        with srv.client() as c:
            stale_nonce = c.post(f"/api/devices/{dev.id}/challenge").json()["nonce"]
        time.sleep(2.1)
        with dev.client() as c:
            assert_error(c.get(f"/api/devices/{dev.id}/config"), 401, "expired")
        with srv.client() as c:
            assert_error(c.post("/api/devices", json=registration_body(dev.prov, stale_nonce)), 401, "expired")
    finally:
        assert srv.stop() == 0


def test_sigint_stops_cleanly_and_logs_are_json_lines(tmp_db):
    srv = FleetServer(tmp_db).start()
    with srv.client() as c:
        c.get("/health/livez")
    srv.proc.send_signal(signal.SIGINT)
    assert srv.proc.wait(timeout=10) == 0
    srv._stderr.close()
    lines = [json.loads(line) for line in srv.stderr_path.read_text().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    assert any(line["msg"] == "request" and line["path"] == "/health/livez" for line in lines)
    assert any(line["msg"] == "stopped" for line in lines)


def test_secret_file_is_created_and_reused(tmp_path, tmp_db):
    secret = tmp_path / "secret"
    srv = FleetServer(tmp_db, "--secret-file", str(secret)).start()
    try:
        dev = Device(srv)
        assert len(secret.read_text().strip()) == 64 and (secret.stat().st_mode & 0o777) == 0o600
    finally:
        assert srv.stop() == 0
    secret.write_text("rotated-secret\n")  # a new secret invalidates the old device tokens
    srv.start()
    try:
        with srv.client(dev.token) as c:
            assert_error(c.get(f"/api/devices/{dev.id}/config"), 401)
    finally:
        assert srv.stop() == 0
