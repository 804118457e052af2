"""RelaysController over REST on the unix build: curl and httpx, every endpoint, every error."""
import json
import subprocess
import time

import httpx
import pytest

from harness.run import run_unix
from harness.scripts import device_script
from harness.role_device import auth, make_token

pytestmark = pytest.mark.unix

RELAYS = {"relay1": {"pin": 2}, "relay2": {"pin": 3, "active_low": True},
          "pump": {"pin": 4, "safe_state": "HIGH"}, "heater": {"pin": 5, "max_on_s": 1}}
INTERLOCKS = [["relay1", "relay2"]]


@pytest.fixture
def relays(role_device):
    return role_device("relays", relays=RELAYS, interlocks=INTERLOCKS,
                       rate_limit={"per_token_rps": 1000, "per_address_rps": 1000,
                                   "burst": 1000})


def curl(*args):
    """curl the device; returns (status, parsed JSON body or text)."""
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}"] + list(args),
                         capture_output=True, text=True, timeout=10, check=True).stdout
    body, status = out.rsplit("\n", 1)
    try:
        body = json.loads(body)
    except ValueError:
        pass
    return int(status), body


def bearer(**kw):
    return "Authorization: Bearer " + make_token(**kw)


# -- every endpoint, with curl ----------------------------------------------------------


def test_curl_every_endpoint(relays):
    u = relays.url
    assert curl(u + "/health/livez")[0] == 200
    status, body = curl(u + "/health/readyz")
    assert status == 200 and body["ok"] is True
    status, text = curl(u + "/metrics")
    assert status == 200 and "iot_http_responses_total" in text
    status, body = curl("-H", bearer(), u + "/gpio")
    assert status == 200
    # safe states at boot: pump's safe state is HIGH, the others LOW
    assert body == {"relays": {"relay1": "LOW", "relay2": "LOW", "pump": "HIGH",
                               "heater": "LOW"}}
    assert curl("-H", bearer(), u + "/gpio/pump") == (200, {"relay": "pump", "state": "HIGH"})
    assert curl("-H", bearer(), "-H", "Content-Type: application/json",
                "-d", '{"state": "HIGH"}', u + "/gpio/relay1") == \
        (200, {"relay": "relay1", "state": "HIGH"})
    status, body = curl("-H", bearer(), "-d", '{"relays": {"relay1": "LOW", "relay2": "HIGH",'
                        ' "pump": "LOW"}}', u + "/gpio")
    assert status == 200
    assert body["relays"] == {"relay1": "LOW", "relay2": "HIGH", "pump": "LOW", "heater": "LOW"}


@pytest.mark.parametrize("args,status,error", [
    (["-d", "not json", "/gpio/relay1"], 400, "bad_request"),
    (["-d", '{"state": "ON"}', "/gpio/relay1"], 400, "bad_request"),
    (["-d", '{"relays": []}', "/gpio"], 400, "bad_request"),
    (["/gpio/nope"], 404, "not_found"),
    (["-d", '{"relays": {"relay1": "HIGH", "relay2": "HIGH"}}', "/gpio"], 409, "conflict"),
    (["/no/such/path"], 404, "not_found"),
])
def test_curl_error_statuses(relays, args, status, error):
    got_status, body = curl("-H", bearer(), *args[:-1], relays.url + args[-1])
    assert got_status == status
    assert body["error"] == error and body["detail"]


def test_curl_401_and_403(relays):
    status, body = curl(relays.url + "/gpio")
    assert (status, body["error"]) == (401, "unauthorized")
    status, body = curl("-H", bearer(role="viewer"), "-d", '{"state": "HIGH"}',
                        relays.url + "/gpio/relay1")
    assert (status, body["error"]) == (403, "forbidden")


# -- every error status, with httpx -----------------------------------------------------


def test_httpx_reads_and_writes(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        assert c.get("/gpio/relay2").json() == {"relay": "relay2", "state": "LOW"}
        r = c.post("/gpio/relay2", json={"state": "HIGH"})
        assert r.status_code == 200 and r.json()["state"] == "HIGH"
        assert c.get("/gpio").json()["relays"]["relay2"] == "HIGH"
        r = c.post("/gpio", json={"relays": {"relay2": "LOW", "relay1": "HIGH"}})
        assert r.json()["relays"]["relay1"] == "HIGH" and r.json()["relays"]["relay2"] == "LOW"


def test_httpx_400_bad_bodies(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        for body in (b"{", b"[]", b'{"state": 1}', b'{"st": "HIGH"}'):
            r = c.post("/gpio/relay1", content=body)
            assert r.status_code == 400, body
            assert r.json()["error"] == "bad_request"
        r = c.post("/gpio", json={"relays": {"relay1": "on"}})
        assert r.status_code == 400 and "relays.relay1" in r.json()["detail"]


@pytest.mark.parametrize("headers,reason", [
    ({}, "missing bearer token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing bearer token"),
    ({"Authorization": "Bearer not.a.jwt"}, "malformed"),
    ("bad_key", "signature"),
    ("expired", "expired"),
    ("wrong_audience", "audience"),
])
def test_httpx_401(relays, headers, reason):
    if headers == "bad_key":
        headers = auth(key="another-tenant-key-0123456789abcdef")
    elif headers == "expired":
        headers = auth(ttl=-120)
    elif headers == "wrong_audience":
        headers = auth(aud="someone-else")
    r = httpx.get(relays.url + "/gpio", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized", "detail": reason}
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("claims,method,detail", [
    ({"role": "viewer"}, "post", "forbidden"),          # RBAC: viewer cannot write
    ({"role": "nobody"}, "get", "unknown_role"),
    ({"tenant": "other-tenant"}, "get", "tenant"),
    ({"namespace": "other-ns"}, "get", "namespace"),
    ({"permissions": ["relays:read"]}, "post", "forbidden"),  # token narrowed to read-only
])
def test_httpx_403(relays, claims, method, detail):
    h = auth(**claims)
    if method == "post":
        r = httpx.post(relays.url + "/gpio/relay1", json={"state": "HIGH"}, headers=h)
    else:
        r = httpx.get(relays.url + "/gpio", headers=h)
    assert r.status_code == 403
    assert r.json() == {"error": "forbidden", "detail": detail}
    # the viewer may still read
    assert httpx.get(relays.url + "/gpio", headers=auth(role="viewer")).status_code == 200


def test_httpx_404_unknown_relays_change_nothing(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        assert c.get("/gpio/relay9").status_code == 404
        r = c.post("/gpio/relay9", json={"state": "HIGH"})
        assert r.status_code == 404 and r.json()["detail"] == "unknown relay relay9"
        r = c.post("/gpio", json={"relays": {"relay1": "HIGH", "relay9": "HIGH"}})
        assert r.status_code == 404
        assert c.get("/gpio/relay1").json()["state"] == "LOW"
        assert c.delete("/gpio/relay1").status_code == 405


def test_httpx_409_interlock_is_atomic(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        assert c.post("/gpio/relay1", json={"state": "HIGH"}).status_code == 200
        r = c.post("/gpio/relay2", json={"state": "HIGH"})
        assert r.status_code == 409
        assert r.json() == {"error": "conflict",
                            "detail": "interlock: relay1 and relay2 cannot both be on"}
        # a batch that breaks the interlock changes none of its relays
        r = c.post("/gpio", json={"relays": {"pump": "LOW", "relay2": "HIGH"}})
        assert r.status_code == 409
        assert c.get("/gpio").json()["relays"] == {"relay1": "HIGH", "relay2": "LOW",
                                                   "pump": "HIGH", "heater": "LOW"}
        # switching the pair over in one batch is allowed
        r = c.post("/gpio", json={"relays": {"relay1": "LOW", "relay2": "HIGH"}})
        assert r.status_code == 200


def test_429_per_token_with_retry_after(role_device):
    d = role_device("relays", relay_pins={"relay1": 2},
                    rate_limit={"per_token_rps": 0.5, "per_address_rps": 100, "burst": 3})
    first, second = make_token(sub="a"), make_token(sub="b")
    statuses = [httpx.get(d.url + "/gpio", headers=auth(first)).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    r = httpx.get(d.url + "/gpio", headers=auth(first))
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 2
    # another token has its own bucket
    assert httpx.get(d.url + "/gpio", headers=auth(second)).status_code == 200
    assert d.metric("iot_http_rate_limited_total") >= 3


def test_429_per_address_even_without_a_token(role_device):
    d = role_device("relays", relay_pins={"relay1": 2},
                    rate_limit={"per_token_rps": 100, "per_address_rps": 1, "burst": 2})
    codes = [httpx.get(d.url + "/gpio").status_code for _ in range(4)]
    assert codes == [401, 401, 429, 429]
    # curl sees the same
    out = subprocess.run(["curl", "-s", "-i", d.url + "/gpio"], capture_output=True,
                         text=True, timeout=10).stdout
    assert out.startswith("HTTP/1.1 429 Too Many Requests") and "Retry-After: 1" in out
    # health and metrics stay reachable for probes
    assert httpx.get(d.url + "/health/livez").status_code == 200


def test_max_on_time_switches_relay_off_by_itself(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        assert c.post("/gpio/heater", json={"state": "HIGH"}).json()["state"] == "HIGH"
        time.sleep(0.4)
        assert c.get("/gpio/heater").json()["state"] == "HIGH"
        time.sleep(1.0)
        assert c.get("/gpio/heater").json()["state"] == "LOW"
    assert relays.metric("iot_relay_auto_off_total") == 1


def test_metrics_count_statuses(relays):
    httpx.get(relays.url + "/gpio")
    httpx.get(relays.url + "/gpio", headers=auth())
    text = httpx.get(relays.url + "/metrics").text
    assert 'iot_http_responses_total{status="401"} 1' in text
    assert 'iot_http_responses_total{status="200"}' in text
    assert "iot_heap_free_bytes" in text


# -- the Python API in-process (same binary): pins, audit, hot reload ---------------------

_IN_PROCESS = "\n" + device_script(__file__, "relays_in_process.py")


def test_python_api_drives_gpio_register_with_polarity_and_audit():
    out = run_unix(_IN_PROCESS + """
print("boot", hex(_iotlib.sim_gpio() & 0x1c0))
ctl.switch({"a": True}, "op")
print("a_on", hex(_iotlib.sim_gpio() & 0x1c0))
ctl.switch({"a": False, "b": True}, "op")
print("b_on", hex(_iotlib.sim_gpio() & 0x1c0))
try:
    ctl.switch({"a": True}, "op")
except ValueError as e:
    print("refused", type(e).__name__)
print("after", hex(_iotlib.sim_gpio() & 0x1c0))
print("audit", [e[0] for e in trail.events], trail.events[0][1]["changes"])
""")
    assert "boot 0x80" in out       # b is active-low: OFF drives GPIO7 high
    assert "a_on 0xc0" in out
    assert "b_on 0x0" in out
    assert "refused InterlockError" in out and "after 0x0" in out
    assert "audit ['relay_command', 'relay_command', 'relay_command_refused'] {'a': 'HIGH'}" \
        in out


def test_python_api_max_on_time_task_and_alarm():
    out = run_unix(_IN_PROCESS + """
async def go():
    ctl.start_guard()
    ctl.switch({"c": True}, "op")
    await asyncio.sleep_ms(600)
    print("mid", ctl.read()["c"])
    await asyncio.sleep_ms(700)
    print("end", ctl.read()["c"], ctl.auto_off)
    ctl.stop_guard()
asyncio.run(go())
print("alarms", alarms.alarms)
print("audit", [e[0] for e in trail.events])
""")
    assert "mid HIGH" in out and "end LOW 1" in out
    assert "'type': 'relay_max_on_time'" in out and "'relay': 'c'" in out
    assert "relay_max_on_time" in out.split("audit", 1)[1]


def test_hot_reload_applies_and_vetoes_pins_outside_board_mask():
    out = run_unix(_IN_PROCESS + "\n" + device_script(__file__, "relays_hot_reload_and_vetoes.py"))
    assert "vetoed relays.x.pin: GPIO 23 is not allowed on this board" in out
    assert "accepted" not in out
    assert "kept [('a', 'HIGH'), ('b', 'LOW'), ('c', 'LOW')] 0xc0" in out
    # the old pins stay at their OFF level (GPIO7 is active-low: high), fan is on
    assert "new [('fan', 'HIGH'), ('lamp', 'LOW')] 0x480" in out
    assert "vetoed interlocks: unknown relay ghost" in out
    assert "limits 2 3 4" in out


def test_config_veto_phase_state_reports_and_desired_state_restore():
    out = run_unix(_IN_PROCESS + "\n" + device_script(__file__, "relays_veto_phase_state.py"))
    assert "veto relays.x.pin: GPIO 24 is not allowed on this board" in out
    assert "veto_ok None" in out and "untouched ['a', 'b', 'c']" in out
    restored = [line for line in out.splitlines() if line.startswith("restored")][0]
    assert restored.startswith("restored [('a', 'HIGH'), ('b', 'LOW'), ('c', 'LOW')] {'relays'")
    for pair in ("'a': 'HIGH'", "'b': 'LOW'", "'c': 'LOW'"):
        assert pair in restored  # the reported state followed the command
    assert "refused interlock: a and b cannot both be on" in out


# -- timers: a command with duration_s switches back by itself -----------------------------


def test_timed_command_switches_back_to_the_state_before(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        r = c.post("/gpio/relay1", json={"state": "HIGH", "duration_s": 1})
        assert r.status_code == 200
        assert r.json() == {"relay": "relay1", "state": "HIGH",
                            "timer": {"revert_to": "LOW", "remaining_s": 1}}
        assert c.get("/gpio").json()["timers"] == {"relay1": {"revert_to": "LOW",
                                                              "remaining_s": 1}}
        time.sleep(1.4)
        assert c.get("/gpio/relay1").json() == {"relay": "relay1", "state": "LOW"}
        assert c.get("/gpio").json() == {"relays": {"relay1": "LOW", "relay2": "LOW",
                                                    "pump": "HIGH", "heater": "LOW"}}
        # the pump's safe state is HIGH: switched off for a second, it comes back on
        r = c.post("/gpio", json={"relays": {"pump": "LOW", "relay2": "HIGH"}, "duration_s": 1})
        assert r.status_code == 200 and r.json()["relays"]["pump"] == "LOW"
        assert sorted(r.json()["timers"]) == ["pump", "relay2"]
        time.sleep(1.4)
        assert c.get("/gpio").json() == {"relays": {"relay1": "LOW", "relay2": "LOW",
                                                    "pump": "HIGH", "heater": "LOW"}}


def test_a_newer_command_ends_the_timer(relays):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        assert c.post("/gpio/relay1", json={"state": "HIGH", "duration_s": 1}).status_code == 200
        r = c.post("/gpio/relay1", json={"state": "HIGH"})     # on for good now
        assert r.json() == {"relay": "relay1", "state": "HIGH"}
        time.sleep(1.4)
        assert c.get("/gpio/relay1").json()["state"] == "HIGH"
        # a second timer on a timed relay keeps the first one's way back (LOW), with its own time
        assert c.post("/gpio/relay1", json={"state": "LOW"}).status_code == 200
        assert c.post("/gpio/relay1", json={"state": "HIGH", "duration_s": 60}).status_code == 200
        r = c.post("/gpio/relay1", json={"state": "HIGH", "duration_s": 1})
        assert r.json()["timer"] == {"revert_to": "LOW", "remaining_s": 1}
        time.sleep(1.4)
        assert c.get("/gpio/relay1").json() == {"relay": "relay1", "state": "LOW"}


@pytest.mark.parametrize("path,body,detail", [
    ("/gpio/relay1", {"state": "HIGH", "duration_s": 0}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio/relay1", {"state": "HIGH", "duration_s": -5}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio/relay1", {"state": "HIGH", "duration_s": 1.5}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio/relay1", {"state": "HIGH", "duration_s": "30"}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio/relay1", {"state": "HIGH", "duration_s": True}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio/relay1", {"state": "HIGH", "duration_s": 86401}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio/relay1", {"state": "HIGH", "duration": 30},
     'unknown field "duration" (the body takes state, duration_s)'),
    ("/gpio", {"relays": {"relay1": "HIGH"}, "duration_s": 0}, "duration_s: must be whole seconds 1..86400"),
    ("/gpio", {"relays": {"relay1": "HIGH"}, "for_s": 30},
     'unknown field "for_s" (the body takes relays, duration_s)'),
])
def test_bad_timer_input_is_a_400_and_switches_nothing(relays, path, body, detail):
    with httpx.Client(base_url=relays.url, headers=auth()) as c:
        before = c.get("/gpio").json()
        r = c.post(path, json=body)
        assert r.status_code == 400
        assert r.json() == {"error": "bad_request", "detail": detail}
        assert c.get("/gpio").json() == before      # nothing switched, no timer
    assert relays.metric("iot_relay_commands_total") == 0


def test_timer_audit_lines_and_interlock_on_the_way_back():
    out = run_unix(_IN_PROCESS + """
import time
ctl.switch({"b": True}, "op")
ctl.switch({"b": False}, "op", 1)       # b off for a second: it wants back on
ctl.switch({"a": True}, "op")           # meanwhile a is on: b may not come back
print("due", ctl.check_timers(time.ticks_add(time.ticks_ms(), 1500)), sorted(ctl.read().items()))
ctl.switch({"a": False, "b": True}, "op")
ctl.switch({"a": True, "b": False}, "op", 1)    # swapped over for a second
print("swap", ctl.check_timers(time.ticks_add(time.ticks_ms(), 1500)), sorted(ctl.read().items()))
for event, fields in trail.events:
    print("audit", event, fields.get("source"), fields.get("changes"), fields.get("duration_s"),
          fields.get("reason"))
""")
    # the interlock refuses b's way back: it stays off (the newer command on a wins)
    assert "due ['b'] [('a', 'HIGH'), ('b', 'LOW'), ('c', 'LOW')]" in out
    # a switch-over and its way back are each one write: the interlock holds throughout
    assert "swap ['a', 'b'] [('a', 'LOW'), ('b', 'HIGH'), ('c', 'LOW')]" in out
    assert "audit relay_command op {'b': 'LOW'} 1 None" in out
    assert "audit relay_command_refused timer None None interlock: a and b cannot both be on" \
        in out
    assert out.count("audit relay_command timer") == 1     # the swap's way back


# -- schedules: daily on/off windows from configuration, on the synced clock ----------------

_SCHEDULED = _IN_PROCESS + """
class Clock:
    trusted = False
    now = 0
    def time(self): return self.now
clock = Clock()
ctl.clock = clock
DAY = 86400 * 19000                      # some day, midnight UTC
ctl.on_config({"relays", "interlocks"}, {"relays": {
    "a": {"pin": 6, "schedule": [{"on": "06:00", "off": "06:30:15"}, {"on": "23:00", "off": "01:00"}]},
    "b": {"pin": 7, "schedule": [{"on": "06:30:15", "off": "07:00"}]},
    "c": {"pin": 8}}, "interlocks": [["a", "b"]]})
"""


def test_schedule_edges_overrides_and_midnight():
    out = run_unix(_SCHEDULED + "\n" + device_script(__file__, "relays_schedule_edges.py"))
    assert "first () [('a', 'LOW'), ('b', 'LOW'), ('c', 'LOW')]" in out
    assert "on ['a'] [('a', 'HIGH'), ('b', 'LOW'), ('c', 'LOW')]" in out
    assert "steady () " in out
    assert "override () [('a', 'LOW'), ('b', 'LOW'), ('c', 'LOW')]" in out
    swap = [line for line in out.splitlines() if line.startswith("swap")][0]
    assert swap.endswith("[('a', 'LOW'), ('b', 'HIGH'), ('c', 'LOW')]") and "'b'" in swap
    assert "off ['b'] [('a', 'LOW'), ('b', 'LOW'), ('c', 'LOW')]" in out
    assert "night ['a'] [('a', 'HIGH')" in out
    assert "past_midnight () [('a', 'HIGH')" in out
    assert "morning ['a'] [('a', 'LOW')" in out
    assert "audit [('relay_command', 'schedule')" in out


def test_schedule_task_waits_for_the_synced_clock_and_catches_up():
    out = run_unix(_SCHEDULED + """
clock.now = DAY + 6 * 3600 + 60          # inside a's window, but the clock is not trusted
async def go():
    ctl.start_schedules()
    await asyncio.sleep_ms(1500)
    print("unsynced", ctl.read()["a"])
    clock.trusted = True                 # SNTP answered: a is late, it catches up
    await asyncio.sleep_ms(1200)
    print("synced", ctl.read()["a"])
    ctl.on_config({"relays"}, {"relays": {"a": {"pin": 6}, "b": {"pin": 7}}, "interlocks": []})
    print("unscheduled", ctl._schedule_task is not None and ctl._schedule_task.running())
    ctl.stop_schedules()
    ctl.stop_guard()
asyncio.run(go())
""")
    assert "unsynced LOW" in out and "synced HIGH" in out
    assert "unscheduled False" in out


def test_bad_schedules_are_vetoed_naming_the_field():
    out = run_unix(_SCHEDULED + """
for schedule in ([{"on": "6:00", "off": "07:00"}], [{"on": "24:00", "off": "01:00"}],
                 [{"on": "06:00", "off": "06:00:00"}], [{"on": "06:00"}], "06:00-07:00",
                 [{"on": "06:00", "off": "07:00"}] * 5, [{"on": "06:00", "off": "07:00", "x": 1}]):
    print("veto", ctl.veto_config({"relays"}, {"relays": {"a": {"pin": 6, "schedule": schedule}},
                                               "interlocks": []}))
print("kept", sorted(ctl._table), ctl._table["a"]["schedule"])
""")
    assert 'veto relays.a.schedule[0].on: must be a time "HH:MM" or "HH:MM:SS" (UTC)' in out
    assert out.count('must be a time "HH:MM" or "HH:MM:SS" (UTC)') == 2
    assert "veto relays.a.schedule[0]: on and off must differ" in out
    assert out.count('veto relays.a.schedule[0]: must be {"on": "HH:MM", "off": "HH:MM"}') == 2
    assert out.count('veto relays.a.schedule: must be a list of at most 4 {"on", "off"} windows') == 2
    assert "veto None" not in out
    assert "kept ['a', 'b', 'c'] [(21600, 23415), (82800, 3600)]" in out
