"""Alarm lifecycle (acknowledge, clear, auto-clear, reopen, escalation) and signed webhook notifications,
received by a real HTTP server on loopback."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet_devtools.fleet_harness import Device, FleetServer, api_token, assert_error

SECRET = "receiver-secret-0123456789"


class Receiver:
    """A webhook endpoint: answers 500 to the first `fail_first` requests, then 200; keeps what it got."""

    def __init__(self, fail_first=0):
        self.fail_first = fail_first
        self.got = []
        self.attempts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                ok = outer.attempts > outer.fail_first
                if ok:
                    outer.got.append((dict(self.headers), body))
                self.send_response(200 if ok else 500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.got) < n:
            time.sleep(0.05)
        assert len(self.got) >= n, (len(self.got), self.attempts)
        return self.got

    def close(self):
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def site(tmp_path_factory, module_db):
    tmp = tmp_path_factory.mktemp("lifecycle")
    cfg = tmp / "settings.json"
    cfg.write_text(json.dumps({"escalate_after_s": {"critical": 2}, "escalation_check_s": 0.2,
                               "webhook_attempts": 3, "webhook_backoff_s": 0.1}))
    srv = FleetServer(module_db, "--config", str(cfg), log_dir=tmp).start()
    yield srv
    assert srv.stop() == 0


def _alarm(type_="overtemp", severity="critical", last_seen=None, **kw):
    now = time.time()
    return dict({"type": type_, "severity": severity, "source": "t", "count": 1, "first_seen": now - 1,
                 "last_seen": last_seen or now, "message": "too hot"}, **kw)


def _post(device, alarms=(), cleared=()):
    with device.client() as c:
        res = c.post("/api/alarms", json={"device_id": device.id, "alarms": list(alarms), "cleared": list(cleared)})
        assert res.status_code == 200, res.text


def _status(client, device):
    return {a["type"]: a for a in client.get("/api/alarms", params={"device_id": device.id}).json()["alarms"]}


def _verify(headers, body):
    expected = "sha256=" + hmac.new(SECRET.encode(), headers["X-Fleet-Timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Fleet-Signature"], expected), headers


def test_critical_alarm_reaches_a_signed_webhook_after_retries(site):
    receiver = Receiver(fail_first=1)
    try:
        dev = Device(site, tenant="hooks")
        admin = api_token(site.db, "hooks", "plant1")
        with site.client(admin) as c:
            assert_error(c.put("/api/admin/webhooks/ops", json={"url": "not a url", "secret": SECRET}), 400, "body.url")
            res = c.put("/api/admin/webhooks/ops", json={"url": receiver.url, "secret": SECRET,
                                                         "min_severity": "critical"})
            assert res.status_code == 200 and "secret" not in res.json()
        _post(dev, [_alarm("low_battery", "warning")])  # below the hook's min_severity: not sent
        _post(dev, [_alarm()])
        headers, body = receiver.wait(1)[0]
        _verify(headers, body)
        event = json.loads(body)
        assert headers["X-Fleet-Event"] == "alarm.opened" and receiver.attempts == 2  # one 500, then delivered
        assert event["alarm"]["type"] == "overtemp" and event["alarm"]["severity"] == "critical"
        assert event["alarm"]["device_id"] == dev.id and event["alarm"]["status"] == "open"
        time.sleep(0.3)
        assert all(json.loads(b)["alarm"]["type"] == "overtemp" for _, b in receiver.got)
        with site.client(admin) as c:
            entries = c.get("/api/admin/audit", params={"action": "webhook."}).json()["entries"]
        assert entries[0]["action"] == "webhook.delivered" and entries[0]["detail"]["attempts"] == 2
        # a tampered body does not verify
        with pytest.raises(AssertionError):
            _verify(headers, body.replace(b"critical", b"info"))
    finally:
        receiver.close()


def test_acknowledge_clear_reopen_and_auto_clear_are_audited(site):
    dev = Device(site, tenant="life")
    admin = api_token(site.db, "life", "plant1")
    viewer = api_token(site.db, "life", "plant1", "viewer")
    _post(dev, [_alarm(severity="warning")])
    key = {"device_id": dev.id, "type": "overtemp", "source": "t"}
    with site.client(viewer) as c:
        assert_error(c.post("/api/admin/alarms/acknowledge", json=key), 403, "alarms:write")
    with site.client(admin) as c:
        acked = c.post("/api/admin/alarms/acknowledge", json=key).json()
        assert acked["status"] == "acknowledged" and acked["changed_by"] == "admin"
        assert_error(c.post("/api/admin/alarms/acknowledge", json=key), 409, "acknowledged")
        assert_error(c.post("/api/admin/alarms/clear", json=dict(key, type="nope")), 404)
        _post(dev, [_alarm(severity="warning")])  # still acknowledged; counted on the one row
        row = _status(c, dev)["overtemp"]
        assert (row["status"], row["count"]) == ("acknowledged", 2)
        assert c.post("/api/admin/alarms/clear", json=key).json()["status"] == "cleared"
        assert_error(c.post("/api/admin/alarms/clear", json=key), 409)
        _post(dev, [_alarm(severity="warning", last_seen=time.time() + 1)])  # the condition is back
        row = _status(c, dev)["overtemp"]
        assert (row["status"], row["count"]) == ("open", 3)
        _post(dev, cleared=[{"type": "overtemp", "source": "t"}])  # the device says it is gone
        row = _status(c, dev)["overtemp"]
        assert (row["status"], row["changed_by"]) == ("cleared", "device")
        assert [a["type"] for a in c.get("/api/alarms", params={"status": "open"}).json()["alarms"]] == []
        entries = c.get("/api/admin/audit", params={"action": "alarm."}).json()["entries"]
    assert [e["action"] for e in reversed(entries)] == ["alarm.opened", "alarm.acknowledged", "alarm.cleared",
                                                        "alarm.reopened", "alarm.cleared"]
    assert [e["actor"] for e in reversed(entries)] == ["device", "admin", "admin", "device", "device"]


def test_unacknowledged_critical_alarm_escalates_with_age_in_alertmanager_format(site):
    receiver = Receiver()
    try:
        dev = Device(site, tenant="escalate")
        admin = api_token(site.db, "escalate", "plant1")
        with site.client(admin) as c:
            c.put("/api/admin/webhooks/am", json={"url": receiver.url, "secret": SECRET, "format": "alertmanager"})
        _post(dev, [_alarm()])
        got = receiver.wait(2, timeout=8)  # opened, then escalated after 2 s
        bodies = [json.loads(b) for _, b in got]
        for (headers, body) in got:
            _verify(headers, body)
        first, second = bodies[0], bodies[1]
        assert first["version"] == "4" and first["status"] == "firing" and first["receiver"] == "am"
        alert = first["alerts"][0]
        assert alert["labels"] == {"alertname": "overtemp", "device_id": dev.id, "tenant": "escalate",
                                   "namespace": "plant1", "source": "t", "severity": "critical"}
        assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["startsAt"].endswith("Z")
        assert second["commonAnnotations"]["event"] == "escalated" and second["commonAnnotations"]["escalation"] == "1"
        with site.client(admin) as c:
            c.post("/api/admin/alarms/acknowledge", json={"device_id": dev.id, "type": "overtemp", "source": "t"})
            level = _status(c, dev)["overtemp"]["escalation"]
            time.sleep(2.5)  # acknowledged: no further escalation
            assert _status(c, dev)["overtemp"]["escalation"] == level
            c.post("/api/admin/alarms/clear", json={"device_id": dev.id, "type": "overtemp", "source": "t"})
        resolved = json.loads(receiver.wait(len(receiver.got) + 0)[-1][1])
        deadline = time.time() + 5
        while resolved["status"] != "resolved" and time.time() < deadline:
            time.sleep(0.1)
            resolved = json.loads(receiver.got[-1][1])
        assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
    finally:
        receiver.close()
