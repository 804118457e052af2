"""device.json checked at boot (iotlib.device_settings, iot_boot.prepare), on the unix build.

A bad device.json (not JSON, not an object, a required key missing, an unknown key, a wrong
type, a key of the other role, a bad nested section) is printed one problem a line, each
naming its field, and the device stays at the REPL: no traceback, nothing served, nothing
written, device.json byte for byte as it was. Every key the simulation launcher and the
tests write still boots, and the checker's key list is compared with what the device and
the controllers actually read.
"""
import ast
import importlib.util
import json
import re

import httpx
import pytest

from harness.run import ROOT, run_unix
from harness.role_device import RoleDevice

pytestmark = pytest.mark.unix

BOOT = "import iot_boot\niot_boot.run()"
HEADER = "iotlib 0.1.0 (SIM): device.json is not valid"
STAYING = "iotlib 0.1.0 (SIM): staying at the REPL; device.json is left as it is: fix it and reset"
RELAYS = {"relay1": {"pin": 2}, "relay2": {"pin": 3}}


def refused(device, text=None):
    """Boot the device's folder with `text` as its device.json (else the one RoleDevice
    wrote); return the console output after checking the refusal left everything as it was."""
    path = device.dir / "device.json"
    if text is not None:
        path.write_text(text)
    before = path.read_bytes()
    out = run_unix(BOOT, cwd=device.dir)  # exit status 0: nothing raised
    assert "Traceback" not in out, out
    assert HEADER in out and out.rstrip().endswith(STAYING), out
    assert "starting" not in out, out
    assert path.read_bytes() == before
    # nothing written: no boot record, no clock floor, no logs, no OTA state
    assert sorted(p.name for p in device.dir.iterdir()) == ["device.json"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(device.url + "/health/livez", timeout=0.5)
    return out


@pytest.mark.parametrize("text, problem", [
    ('{"device_id": "x", "api_key": "k", "role": relays}',
     "device.json: not valid JSON (syntax error in JSON)"),
    # MicroPython's json takes a file cut short as the keys before the cut: refused all the same
    ('{"device_id": "x", "api_key": "k", "role": "relays", ',
     "device.json: not valid JSON (cut short: no closing })"),
    ("", "device.json: not valid JSON (syntax error in JSON)"),
    ('[{"device_id": "x", "api_key": "k"}]',
     "device.json: must be a JSON object {...}, not an array"),
    ('"device_id"', "device.json: must be a JSON object {...}, not a string"),
], ids=["invalid-json", "cut-short", "empty", "array", "string"])
def test_a_file_that_is_not_a_json_object_is_refused(tmp_path, text, problem):
    out = refused(RoleDevice(tmp_path, "relays"), text)
    assert out.splitlines() == [HEADER + " (1 problem):", "  " + problem, STAYING]


@pytest.mark.parametrize("settings, problem", [
    ({"device_id": None}, "device_id: expected a non-empty string, got null"),
    ({"api_key": ""}, "api_key: must not be empty"),
    ({"wifi_sid": "plant"}, "wifi_sid: unknown key (did you mean wifi_ssid?)"),
    ({"relay_pin": {"relay1": 2}}, "relay_pin: unknown key (did you mean relay_pins?)"),
    ({"port": "eighty"}, "port: expected a port number 0..65535, got a string"),
    ({"port": 70000}, "port: expected a port number 0..65535, got 70000"),
    ({"use_wdt": "no"}, "use_wdt: expected true or false, got a string"),
    ({"config_poll_s": True}, "config_poll_s: expected a number, got true/false"),
    ({"ntp_servers": "pool.ntp.org"}, "ntp_servers: expected a list of strings, got a string"),
    ({"fields": {"t": {"source": "sim", "rate_hz": 1}}},
     "fields: a key of the sensors role, this device runs relays"),
    ({"relays": {"relay1": {"pin": 40}}}, "relays.relay1.pin: must be <= 28"),
    ({"relays": {"relay1": {"pin": 2, "safe": "LOW"}}}, "relays.relay1.safe: unknown field"),
    ({"rate_limit": {"per_token_rps": 5}}, "rate_limit.per_address_rps: required"),
    ({"http": {"max_conections": 2}},
     "http.max_conections: unknown key (did you mean max_connections?)"),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else None)
def test_each_bad_key_is_named_with_its_field_path(tmp_path, settings, problem):
    out = refused(RoleDevice(tmp_path, "relays", **dict({"relays": RELAYS}, **settings)))
    assert out.splitlines() == [HEADER + " (1 problem):", "  device.json: " + problem, STAYING]


def test_a_missing_device_id_and_every_other_problem_are_listed_at_once(tmp_path):
    device = RoleDevice(tmp_path, "sensors", wifi_sid="plant", port="eighty",
                        relays=RELAYS, ping_s=5, pong_timeout_s=9)
    settings = json.loads((device.dir / "device.json").read_text())
    del settings["device_id"]
    out = refused(device, json.dumps(settings))
    assert out.splitlines() == [
        HEADER + " (5 problems):",
        "  device.json: device_id: missing (required)",
        "  device.json: pong_timeout_s: must be > 0 and <= ping_s (5)",
        "  device.json: port: expected a port number 0..65535, got a string",
        "  device.json: relays: a key of the relays role, this device runs sensors",
        "  device.json: wifi_sid: unknown key (did you mean wifi_ssid?)",
        STAYING]


def _sim():
    spec = importlib.util.spec_from_file_location("sim_launcher", ROOT / "firmware" / "sim.py")
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)
    return sim


@pytest.mark.parametrize("role", ["relays", "sensors"])
def test_what_the_sim_launcher_writes_boots(tmp_path, role):
    """Both of sim.py's device.json forms (fleet: credentials only; --no-fleet: with the
    configuration), plus the optional keys the tests write, start and serve."""
    sim = _sim()
    identity = {"device_id": "sim-%s-1" % role, "device_key": "dk", "api_key": "k" * 32,
                "tenant": "demo", "namespace": "lab", "role": role}
    config = sim.RELAYS_CONFIG if role == "relays" else sim.SENSORS_CONFIG
    extra = {"wifi_ssid": None, "wifi_password": None, "use_wdt": True, "max_missed": 5,
             "ntp_servers": [], "ntp_retry_s": 1, "max_token_lifetime_s": 3600,
             "http_client_max_body": 4096, "mask_fields": ["token"],
             "rbac": {"roles": {"admin": ["relays:read"]}}, "fleet_ca_file": None,
             "fleet_tls_insecure_skip_verify": False,
             "http": {"max_connections": 4, "idle_s": 5, "head_s": 10, "body_s": 10,
                      "write_s": 10}}
    if role == "relays":
        extra.update(relay_pins=None, allowed_mask=None)
    else:
        extra.update(queue_size=8, client_rps=5, client_burst=10, ping_s=20, pong_timeout_s=10,
                     ws_sndbuf=2048)
    for with_config in (None, config):
        settings = sim.device_settings(identity, 0, None, with_config)
        settings.update(extra)
        settings.pop("port")  # RoleDevice's free port
        settings.pop("role")
        d = RoleDevice(tmp_path, role, **settings).start()
        try:
            assert httpx.get(d.url + "/health/livez", timeout=5).status_code == 200
            assert "not valid" not in d.output()
        finally:
            d.stop()


def test_the_checker_leaves_nothing_on_the_heap_after_boot(tmp_path):
    device = RoleDevice(tmp_path, "relays", relays=RELAYS)
    out = run_unix("import sys, iotlib, iot_boot\nd = iot_boot.prepare()\n"
                   "print(d is not None, 'iotlib.device_settings' in sys.modules, "
                   "'device_settings' in iotlib.__dict__)", cwd=device.dir)
    assert out.splitlines()[-1] == "True False False", out


# -- the checker's key list against what the code reads ---------------------------------

COLLABORATORS = {"self", "network", "auth", "config", "logger", "audit", "state", "alarms",
                 "metrics", "health", "managers", "clock", "denials", "sampler"}


def _init_args(path, cls):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return {a.arg for a in item.args.args} - COLLABORATORS
    raise AssertionError("%s not found in %s" % (cls, path))


def _device_reads():
    keys = set()
    for name in ("iotlib/device.py", "iotlib/fleet_tls.py", "iot_boot.py"):
        text = (ROOT / "modules" / name).read_text()
        keys |= set(re.findall(r'settings(?:\.get\(|\[)"(\w+)"', text))
    tree = ast.parse((ROOT / "modules/iotlib/device.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "DEVICE_KEYS":
            keys |= set(ast.literal_eval(node.value))
    return keys


def _known(role):
    out = run_unix("import iotlib.device_settings as d\nimport json\n"
                   "print(json.dumps(d.known_keys(%r)))\nprint(json.dumps(d.HTTP.split()))"
                   % role)
    keys, http = out.splitlines()
    return set(json.loads(keys)), {k.split(":")[0] for k in json.loads(http)}


def test_the_checker_knows_exactly_the_keys_the_device_and_controllers_read():
    modules = ROOT / "modules"
    base = _init_args(modules / "iotlib/role_base.py", "RoleController")
    relays = _init_args(modules / "relays_controller.py", "RelaysController")
    sensors = _init_args(modules / "sensors_controller.py", "SensorsController")
    device = _device_reads()
    assert {"use_wdt", "fleet_ca_file", "ntp_retry_s"} <= device - base
    known_relays, http = _known("relays")
    known_sensors, _ = _known("sensors")
    assert known_relays == device | relays
    # restore_desired: Device drops it for any role but relays (the tests write it for both)
    assert known_sensors == device | sensors | {"restore_desired"}
    # the http section: ConnectionLimits.from_settings
    text = (modules / "iotlib/http_server.py").read_text()
    section = re.search(r"for key in (\(.*?\)):", text[text.index("def from_settings"):], re.S)
    assert http == set(ast.literal_eval(section.group(1)))


def test_docs_name_every_key():
    docs = (ROOT / "docs" / "roles.md").read_text()
    known, http = _known(None)
    missing = sorted(k for k in known | http if "`%s`" % k not in docs)
    assert not missing, missing


def test_an_rp2_image_refuses_a_role_it_does_not_run():
    """On the rp2 images the variant is the role (iot_boot passes it): device.json may
    repeat it, not contradict it; the other role's keys are refused there too."""
    out = run_unix(
        "import iotlib.device_settings as d\n"
        "ok = {'device_id': 'x', 'api_key': 'k'}\n"
        "print(d.problems(dict(ok, role='relays'), 'relays', 'relays'))\n"
        "print(d.problems(dict(ok, role='sensors'), 'relays', 'relays'))\n"
        "print(d.problems(dict(ok, max_clients=2), 'relays', 'relays'))\n"
        "print(d.problems(dict(ok, max_clients=2), 'sensors', 'sensors'))\n")
    assert out.splitlines() == [
        "[]",
        "['role: sensors, but this image runs the relays role']",
        "['max_clients: a key of the sensors role, this device runs relays']",
        "[]"]
