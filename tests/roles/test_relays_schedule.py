"""A relay schedule from the fleet's configuration, on the unix build: the device starts with
its simulated RTC in 2021 as a Pico W does, so its schedule must wait for SNTP; once synced,
the relay switches at its times, seen through the API and in the state service."""
import json
import time

import pytest

import httpx

from fleet_devtools.sntp import SntpResponder
from harness.fleet_device import Fleet
from harness.role_device import RoleDevice
from harness.run import POWER_ON
from harness.waiting import wait_for

pytestmark = pytest.mark.unix

TENANT, NAMESPACE = "acme", "plant1"
DAY = 86400


def hms(day_s):
    day_s %= DAY
    return "%02d:%02d:%02d" % (day_s // 3600, day_s // 60 % 60, day_s % 60)


def relay_on(device, name):
    """iot_relay_on from /metrics: tokenless, so it answers before the clock is synced."""
    for line in httpx.get(device.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith('iot_relay_on{relay="%s"}' % name):
            return float(line.rsplit(" ", 1)[1]) == 1
    raise AssertionError("no iot_relay_on for %s" % name)


def test_a_schedule_waits_for_sntp_then_switches_at_its_times(tmp_path, monkeypatch):
    now = int(time.time())
    on_at = now + 20                                    # today's wall clock (UTC), host time
    # the unsynced RTC reads 2021-01-01 plus a time of day 12 hours away from the real one;
    # "decoy" is scheduled on around that false time: it must stay off
    rtc_start = POWER_ON + (now + DAY // 2) % DAY
    config = {"relays": {
        "lamp": {"pin": 2, "schedule": [{"on": hms(on_at), "off": hms(on_at + 5)}]},
        "decoy": {"pin": 3, "schedule": [{"on": hms(rtc_start - 60), "off": hms(rtc_start + 600)}]}}}
    sntp = SntpResponder()
    sntp.answering = False
    fleet = Fleet(tmp_path, {"ntp_servers": ["127.0.0.1:%d" % sntp.port], "heartbeat_s": 5})
    fleet.start()
    device = None
    try:
        creds = fleet.provision("sched-relays-1", TENANT, NAMESPACE, "relays")
        (tmp_path / "config.json").write_text(json.dumps(config))
        fleet.admin("config-set", "--id", "sched-relays-1", "--file", str(tmp_path / "config.json"))
        device = RoleDevice(tmp_path, "relays", device_id="sched-relays-1",
                            device_key=creds["device_key"], api_key=creds["api_key"],
                            tenant=TENANT, namespace=NAMESPACE, config_poll_s=1, state_poll_s=1,
                            ntp_retry_s=1, service_discovery_url=fleet.url + "/devices")
        monkeypatch.setenv("IOTLIB_SIM_RTC", str(rtc_start))
        device.start()
        token = fleet.admin("token", "--tenant", TENANT, "--namespace", NAMESPACE,
                            "--role", "viewer")["token"]
        api = {"Authorization": "Bearer " + token}
        # configured (the relays exist) but not synced: the API refuses tokens, no schedule runs
        wait_for("relays configured", lambda: relay_on(device, "decoy") is False, timeout=10)
        time.sleep(2.5)                                 # two and more rounds of the schedule task
        assert relay_on(device, "decoy") is False and relay_on(device, "lamp") is False
        assert httpx.get(device.url + "/gpio", headers=api, timeout=5).status_code == 503
        assert time.time() < on_at - 8, "the device took too long to start"

        sntp.answering = True
        wait_for("synced", lambda: httpx.get(device.url + "/gpio", headers=api,
                                             timeout=5).status_code == 200, timeout=8)

        def state(name):
            return httpx.get(device.url + "/gpio/" + name, headers=api, timeout=5).json()["state"]

        def reported(name):
            doc = fleet.admin("state-get", "--id", "sched-relays-1")["reported"]
            return doc.get("relays", {}).get(name)
        assert state("lamp") == "LOW" and state("decoy") == "LOW"
        wait_for("lamp on", lambda: state("lamp") == "HIGH", timeout=on_at - time.time() + 3)
        assert time.time() >= on_at - 1                 # not before its time
        wait_for("reported lamp HIGH", lambda: reported("lamp") == "HIGH", timeout=3)
        wait_for("lamp off", lambda: state("lamp") == "LOW", timeout=on_at + 5 - time.time() + 3)
        assert time.time() >= on_at + 4
        wait_for("reported lamp LOW", lambda: reported("lamp") == "LOW", timeout=3)
        assert state("decoy") == "LOW" and reported("decoy") == "LOW"
        audit = [json.loads(line) for line in
                 (device.dir / "logs" / "audit.log").read_text().splitlines()]
        switched = [(a["changes.lamp"], abs(a["ts"] - t)) for a, t in zip(
            [a for a in audit if a.get("source") == "schedule"], (on_at, on_at + 5))]
        assert [s for s, _ in switched] == ["HIGH", "LOW"], audit   # decoy: never
        assert all(off <= 1 for _, off in switched), switched       # stamped at their times
    finally:
        if device is not None:
            device.stop()
        fleet.stop()
        sntp.close()
