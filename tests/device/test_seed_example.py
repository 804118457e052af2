"""The seed's usage example, run as written (tests/device/device_scripts/seed_example.py, the
example docs/iotlib.md and docs/roles.md show) on the unix build against the reference
fleet-server: only its placeholder URLs, id and key are replaced with the test fleet's.

The device it runs is provisioned in iotlib's default tenant and namespace ("default"), and
it is given no API key: registration fetches it. The controller serves the seed's default
port, 80, on every interface, as a Pico W does.
"""
import json
import pathlib
import socket

import httpx
import pytest

from fleet_devtools.ports import free_port
from fleet_devtools.sntp import SntpResponder
from harness.fleet_device import Device, Fleet, prelude
from harness.run import ROOT, run_unix
from harness.scripts import device_script, script_env
from harness.waiting import wait_for

pytestmark = pytest.mark.unix

SCRIPT = pathlib.Path(__file__).parent / "device_scripts" / "seed_example.py"
DEVICE_ID = "seed-relays-1"
FLEET_RELAYS = {"relays": {"relay1": {"pin": 2}, "relay2": {"pin": 3}, "pump": {"pin": 4}}}


def seed_script(fleet, creds, ntp):
    """The example with each placeholder replaced; every one must be there (else the
    example changed and this test would not be running it)."""
    text = SCRIPT.read_text()
    for placeholder, value in (
            ('"device_key"', creds["device_key"]), ('"device_id"', DEVICE_ID),
            ('"https://configserver/api"', fleet.url), ('"https://servicediscovery/api"', fleet.url),
            ('"https://stateserver/api"', fleet.url), ('"https://alarms/api"', fleet.url),
            ('"https://updates/api"', fleet.url), ('"https://<host>/api/devices"', fleet.url + "/devices"),
            ('"pool.ntp.org"', ntp), ('"time.google.com"', ntp)):
        assert placeholder in text, placeholder
        text = text.replace(placeholder, json.dumps(value))
    return text


def port_80_free():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", 80))
    except OSError as e:
        pytest.fail("the seed's controller serves on port 80, which this host refuses (%s): "
                    "run as a user allowed to bind it, with nothing else listening there" % e)
    finally:
        s.close()


@pytest.fixture
def seed_device(tmp_path):
    sntp = SntpResponder(offset_s=0.0)
    ntp = "127.0.0.1:%d" % sntp.port
    # plain HTTP on loopback: the fleet sends the tenant's API key in the clear only when told
    fleet = Fleet(tmp_path, {"ntp_servers": [ntp], "heartbeat_s": 5, "api_key_over_http": True})
    creds = fleet.provision(DEVICE_ID, "default", "default", "relays")
    (tmp_path / "relays.json").write_text(json.dumps(FLEET_RELAYS))
    fleet.admin("config-set", "--id", DEVICE_ID, "--file", str(tmp_path / "relays.json"))
    fleet.start()
    port_80_free()
    folder = tmp_path / "device"
    folder.mkdir()
    dev = Device(seed_script(fleet, creds, ntp), folder)
    dev.fleet, dev.creds = fleet, creds
    yield dev
    dev.kill()
    fleet.stop()
    sntp.close()
    output = "\n".join(dev.lines)
    assert "Traceback" not in output, output


def test_the_seed_example_registers_takes_its_config_and_serves_fleet_tokens(seed_device):
    fleet = seed_device.fleet
    token = fleet.admin("token", "--tenant", "default", "--namespace", "default",
                        "--role", "admin")["token"]
    admin = {"Authorization": "Bearer " + token}

    def inventory():
        r = httpx.get(fleet.url + "/admin/devices", headers=admin, timeout=5)
        return [d for d in r.json()["devices"] if d["id"] == DEVICE_ID and d["online"]]
    entry = wait_for("the device online in the inventory", inventory, timeout=30)[0]
    assert (entry["tenant"], entry["namespace"], entry["role"]) == ("default", "default", "relays")

    # the controller's relays are the fleet's configuration (the seed names relay1 and
    # relay2; the fleet adds the pump), read with a token the fleet minted
    def fleet_relays():
        r = httpx.get("http://127.0.0.1/gpio", headers=admin, timeout=5)
        relays = r.json().get("relays") if r.status_code == 200 else None
        return relays if relays and "pump" in relays else None
    assert wait_for("the fleet's relays", fleet_relays, timeout=30) == {
        "relay1": "LOW", "relay2": "LOW", "pump": "LOW"}
    r = httpx.post("http://127.0.0.1/gpio/pump", json={"state": "HIGH"}, headers=admin, timeout=5)
    assert r.status_code == 200 and r.json()["state"] == "HIGH", r.text
    # a token of another tenant is refused
    other = fleet.provision("other-tenant-dev", "acme", "plant1", "relays")
    assert other["api_key"] != seed_device.creds["api_key"]
    foreign = fleet.admin("token", "--tenant", "acme", "--namespace", "plant1",
                          "--role", "admin")["token"]
    r = httpx.get("http://127.0.0.1/gpio", headers={"Authorization": "Bearer " + foreign}, timeout=5)
    assert r.status_code == 401, r.text

    # the seed's own AlarmManager, never started, delivered its alarm
    def overtemp():
        alarms = fleet.admin("alarms", "--id", DEVICE_ID)["alarms"]
        return [a for a in alarms if a["type"] == "overtemp"]
    alarm = wait_for("the seed's alarm at the fleet", overtemp, timeout=30)[0]
    assert (alarm["severity"], alarm["source"], alarm["count"]) == ("critical", "device", 1)

    hb = wait_for("a heartbeat", lambda: fleet.admin("heartbeat", "--id", DEVICE_ID)["heartbeat"])
    assert hb["uptime_s"] >= 0 and hb["free_heap"] > 0


def test_the_documented_examples_are_the_script_the_test_runs():
    text = SCRIPT.read_text()
    for doc in ("iotlib.md", "roles.md"):
        assert "```python\n" + text + "```" in (ROOT / "docs" / doc).read_text(), doc


# -- bad input ---------------------------------------------------------------------------


def test_a_seed_constructor_given_a_wrong_type_says_which_argument(tmp_path):
    out = run_unix("\n" + device_script(__file__, "seed_constructor_wrong_types.py"), cwd=tmp_path).splitlines()
    assert out == [
        "NetworkManager: ssid must be a string, not int",
        "AuthManager: device_key must be a string, not bytes",
        "ConfigManager(base_url, auth, device_id): base_url and device_id must be strings, "
        "not str and AuthManager",
        'Logger: mask_fields must be a list of field names, e.g. ["token"], not \'token\'',
        "WatchdogManager(discovery_url, auth, device_id): discovery_url and device_id must be "
        "strings, not AuthManager and str",
        "StateManager(state_url, auth, device_id): state_url (or None) and device_id must be "
        "strings, not str and int",
        'TimeSyncManager: servers must be a list of host names, e.g. ["pool.ntp.org"], '
        "not 'pool.ntp.org'",
        "AlarmManager: alarms_url must be a URL string or None, not dict",
        "OTAUpdateManager(updates_url, auth, ...): updates_url must be a URL string, not "
        "AuthManager"]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_standalone_controller_with_bad_settings_names_them_and_writes_nothing(tmp_path):
    out = run_unix("""
import asyncio
from relays_controller import RelaysController
controller = RelaysController(wifi_ssid="SSID", device_id=7, device_key="k", port="80",
                              service_discovery_url="http://127.0.0.1:9/api/devices",
                              relay_pins={"relay1": 2})
try:
    asyncio.run(controller.main())
except ValueError as e:
    print(e)
try:
    RelaysController("SSID", "PASSWORD", "id", "key", "http://127.0.0.1:9/api", {"relay1": 2})
except TypeError as e:
    print(e)
""", cwd=tmp_path).splitlines()
    assert out == ["RelaysController: device_id: expected a non-empty string, got 7; "
                   "port: expected a port number 0..65535, got a string",
                   "RelaysController: settings after service_discovery_url go by keyword"]
    assert list(tmp_path.iterdir()) == []  # no boot record, clock floor, logs or OTA state


# -- what the example relies on ------------------------------------------------------------


def test_a_loop_run_as_the_callers_task_is_stopped_by_stop_and_runs_once(tmp_path):
    # the seed runs the loops with asyncio.create_task(m.loop()) instead of m.start()
    out = run_unix("\n" + device_script(__file__, "seed_loop_as_callers_task.py"), cwd=tmp_path).splitlines()
    assert out == ["%s (False, True) True True" % n for n in (
        "monitor", "fetch_config_loop", "watchdog_loop", "sync_loop", "sync_loop", "send_loop")]


ALARMS_ON_THEIR_OWN = "\n" + device_script(__file__, "alarms_on_their_own.py")


def test_an_alarm_manager_nobody_starts_sends_by_itself(fleet, tmp_path):
    creds = fleet.provision("seed-alarms-1", "default", "default")
    fleet.start()
    code = prelude(creds, fleet.url, tmp_path / "dev") + \
        "from iotlib.registration import Registration\n" + ALARMS_ON_THEIR_OWN
    dev = Device(code, tmp_path)
    assert dev.expect(r"^SENT .*$").group(0) == "SENT 1 True False False managed stopped"
    assert dev.expect(r"^FLUSHED .*$").group(0) == "FLUSHED True 1"
    assert dev.wait() == 0
    listed = {a["type"]: a for a in fleet.admin("alarms", "--id", "seed-alarms-1")["alarms"]}
    assert sorted(listed) == ["managed", "own"]
    assert listed["own"]["count"] == 1 and listed["managed"]["count"] == 1


OTA_SEED_FORM = "\n" + device_script(__file__, "ota_in_the_seed_form.py")


def test_ota_in_the_seed_form_learns_its_id_and_the_api_key_from_registration(fleet, tmp_path):
    creds = fleet.provision("seed-ota-1", "default", "default")
    fleet.start()
    code = prelude(creds, fleet.url, tmp_path / "dev") + OTA_SEED_FORM
    dev = Device(code, tmp_path, script_env(device_key=creds["device_key"], api_key=creds["api_key"]))
    assert dev.expect(r"^BEFORE .*$").group(0) == "BEFORE False not_registered"
    assert dev.expect(r"^AFTER .*$").group(0) == "AFTER True None seed-ota-1 True"
    assert dev.wait() == 0


def test_a_standalone_controller_serves_until_stop_and_stop_ends_its_device(tmp_path):
    port = free_port()
    out = run_unix(device_script(__file__, "standalone_sensors_controller.py"),
                   env=script_env(port=port), cwd=tmp_path).splitlines()
    assert out == ["serving True True True", "stopped True False False False"]
    assert {"boot.json", "logs"} <= {p.name for p in tmp_path.iterdir()}  # the boot path's files
