"""ConfigManager against a real HTTP config server (CPython, started here): fetched with
ETag, validated, hot-reloaded, rejected with the field path, served from flash when the
server is down."""
import http.server
import json
import os
import threading

import pytest

from harness.run import BUILD, run_unix

pytestmark = pytest.mark.unix


class ConfigServer:
    """GET /api/devices/<id>/config with ETag/If-None-Match, as the fleet config service."""

    def __init__(self):
        self.version = 1
        self.config = {"log_level": "INFO", "heartbeat_s": 30}
        self.requests = []
        self.closed = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append((self.path, dict(self.headers)))
                etag = '"%d"' % outer.version
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                body = json.dumps({"version": outer.version, "config": outer.config}).encode()
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, config):
        self.version += 1
        self.config = config

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ConfigServer()
    yield s
    s.close()


PRELUDE = """
import asyncio, json
from iotlib.auth_manager import AuthManager
from iotlib.config_manager import ConfigManager
from iotlib.config_schema import validator
auth = AuthManager("device_key")
auth.set_device_token("dev-token-1", auth.clock.time() + 3600)
# the core sections and both roles' (a device composes the core with its one role's)
config = ConfigManager("http://127.0.0.1:%d/api", auth, "dev1",
                       validate=validator("relays", "sensors"))
events = []
config.subscribe(lambda changed, cfg: events.append(sorted(changed)))
def out(*a): print(json.dumps(a))
"""


def run(code, port, cwd):
    return [json.loads(line) for line in
            run_unix(PRELUDE % port + code, cwd=str(cwd)).splitlines() if line.startswith("[")]


def test_fetched_validated_with_defaults_and_etag(server, tmp_path):
    lines = run("""
async def main():
    out(await config.fetch_once(), config.version, config.config["heartbeat_s"],
        config.config["rbac"]["roles"]["viewer"])
    out(await config.fetch_once())
asyncio.run(main())
""", server.port, tmp_path)
    assert lines[0] == ["updated", 1, 30, ["relays:read", "sensors:read"]]
    assert lines[1] == ["unchanged"]
    path, headers = server.requests[1]
    assert path == "/api/devices/dev1/config"
    assert headers["If-None-Match"] == '"1"'
    assert headers["Authorization"] == "Bearer dev-token-1"
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["version"] == 1 and saved["config"]["log_level"] == "INFO"


def test_hot_reload_notifies_changed_sections_and_veto_keeps_old(server, tmp_path):
    server.publish({"log_level": "INFO", "relays": {"pump": {"pin": 2}}})
    code = """
def veto(changed, new):
    if new["relays"].get("pump", {}).get("pin") == 13:
        return "pin 13 is wired to the heater"
config.subscribe(veto=veto, sections=["relays"])
async def main():
    out(await config.fetch_once(), events)
    out(await config.fetch_once(), events)
    out(await config.fetch_once(), config.config["relays"]["pump"]["pin"], config.version)
asyncio.run(main())
"""
    # the server moves on between fetches: one change of log_level, then a vetoed relay pin
    orig = server.httpd.RequestHandlerClass.do_GET
    steps = [None, {"log_level": "DEBUG", "relays": {"pump": {"pin": 2}}},
             {"log_level": "DEBUG", "relays": {"pump": {"pin": 13}}}]

    def do_get(handler):
        step = steps.pop(0) if steps else None
        if step is not None:
            server.publish(step)
        orig(handler)
    server.httpd.RequestHandlerClass.do_GET = do_get
    lines = run(code, server.port, tmp_path)
    assert lines[0] == ["updated", [["enabled_components", "heartbeat_s", "interlocks",
                                     "log_level", "mask_fields", "ntp_servers", "rate_limit",
                                     "rbac", "relays", "sensors"]]]
    assert lines[1][0] == "updated" and lines[1][1][-1] == ["log_level"]
    assert lines[2] == ["rejected: pin 13 is wired to the heater", 2, 3]  # v4 vetoed, v3 stays


@pytest.mark.parametrize("bad, path", [
    ({"heartbeat_s": 1}, "heartbeat_s: must be >= 5"),
    ({"relays": {"pump": {"pin": 40}}}, "relays.pump.pin: must be <= 28"),
    ({"sensors": {"fields": {"t": {"source": "adc9", "rate_hz": 1}}}},
     "sensors.fields.t.source: must be one of"),
    ({"colour": "red"}, "colour: unknown field"),
    ({"relays": {"a": {"pin": 1}}, "interlocks": [["a", "b"]]},
     "interlocks[0][1]: unknown relay b"),
])
def test_invalid_config_rejected_with_field_path(server, tmp_path, bad, path):
    lines = _reject_case(server, tmp_path, bad)
    assert lines[0] == ["updated", "INFO"]
    assert lines[1][0].startswith("rejected: " + path), lines[1]
    assert lines[1][1] == "INFO"  # the previous config stays active
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["version"] == 1  # and the stored last-known-good too


def _reject_case(server, tmp_path, bad):
    orig = server.httpd.RequestHandlerClass.do_GET
    calls = []

    def do_get(handler):
        calls.append(1)
        if len(calls) == 2:
            server.publish(bad)
        orig(handler)
    server.httpd.RequestHandlerClass.do_GET = do_get
    return run("""
async def main():
    out(await config.fetch_once(), config.config["log_level"])
    out(await config.fetch_once(), config.config["log_level"], config.last_error)
asyncio.run(main())
""", server.port, tmp_path)


def test_served_from_last_known_good_when_server_down(server, tmp_path):
    server.publish({"log_level": "ERROR", "heartbeat_s": 60})
    assert run("""
asyncio.run(config.fetch_once())
out(config.version)
""", server.port, tmp_path) == [[2]]
    port = server.port
    server.close()
    lines = run("""
async def main():
    await config.start()
    await asyncio.sleep_ms(300)
    out(config.source, config.version, config.config["log_level"], config.config["heartbeat_s"],
        config.last_error.startswith("unreachable"), config.fetches)
    await config.stop()
asyncio.run(main())
""", port, tmp_path)
    assert lines == [["flash", 2, "ERROR", 60, True, 1]]


def test_enabled_components_start_and_stop_managers(server, tmp_path):
    server.publish({"enabled_components": {"thing": True}})
    lines = run("""
class Thing:
    running = False
    async def start(self): self.running = True
    async def stop(self): self.running = False
from iotlib.lifecycle import Components
thing = Thing()
components = Components(config, [("thing", thing)], default=False)
async def main():
    await components.start()                  # nothing loaded yet: the default, off
    out(await config.fetch_once(), thing.running or components.running("thing"))
    await asyncio.sleep_ms(0)                 # the switch runs as its own task
    out(thing.running and components.running("thing"))
    config.apply({"enabled_components": {"thing": False}})
    await asyncio.sleep_ms(0)
    out(thing.running or components.running("thing"))
asyncio.run(main())
""", server.port, tmp_path)
    assert lines == [["updated", False], [True], [False]]



def test_subscriber_raising_value_error_vetoes_and_others_get_old_config_back(server, tmp_path):
    server.publish({"heartbeat_s": 40})
    orig = server.httpd.RequestHandlerClass.do_GET
    calls = []

    def do_get(handler):
        calls.append(1)
        if len(calls) == 2:
            server.publish({"heartbeat_s": 50})
        orig(handler)
    server.httpd.RequestHandlerClass.do_GET = do_get
    lines = run("""
seen = []
config.subscribe(lambda changed, cfg: seen.append(cfg["heartbeat_s"]))
def picky(changed, cfg):
    if cfg["heartbeat_s"] == 50:
        raise ValueError("heartbeat 50 collides with the pump cycle")
config.subscribe(picky)
async def main():
    out(await config.fetch_once(), seen)
    out(await config.fetch_once(), seen, config.config["heartbeat_s"], config.version)
asyncio.run(main())
""", server.port, tmp_path)
    assert lines[0] == ["updated", [40]]
    # the first subscriber saw 50, then got 40 back when the second refused it
    assert lines[1] == ["rejected: heartbeat 50 collides with the pump cycle", [40, 50, 40], 40, 2]
