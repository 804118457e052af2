"""The device's wall clock on the unix build, against the real fleet-server and an SNTP
responder on loopback. The simulated RTC starts at 2021-01-01 as the RP2040's does:

- before SNTP answers, the API refuses tokens with 503 + Retry-After (curl) and readyz says
  `time_synced` is false; provably bad tokens (1e999, bad signature) are 401 already;
- once SNTP answers, a token minted by `fleet-admin token` switches a relay (httpx), and
  expired tokens (with and without iat) and absurd lifetimes are 401 (PyJWT-made);
- the boot record, log, audit line, alarm and sensor sample are dated today;
- after a restart, the floor kept on flash refuses expired tokens before SNTP answers.
"""
import base64
import hashlib
import hmac
import json
import subprocess
import time

import httpx
import jwt
import pytest

from harness.run import MicroPythonError
from harness.scripts import device_script
from fleet_devtools.sntp import SntpResponder
from harness.fleet_device import Fleet
from harness.role_device import RoleDevice
from harness.run import POWER_ON
from harness.waiting import wait_for

pytestmark = pytest.mark.unix

TENANT, NAMESPACE = "acme", "plant1"
CONFIG = {"relays": {"relay1": {"pin": 2}, "pump": {"pin": 4, "max_on_s": 1}}}
DAY = 86400


def start_at_power_on(device):
    """Start the unix build with its simulated RTC at 2021-01-01, as a Pico W powers on."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IOTLIB_SIM_RTC", str(POWER_ON))
        return device.start()


def signed(payload_json, key):
    """An HS256 JWT over a payload written as raw JSON text (PyJWT cannot write 1e999)."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=")
    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(payload_json.encode())
    sig = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(sig)).decode()


class Site:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sntp = SntpResponder()
        self.sntp.answering = False       # reachable later: the device starts unsynced
        self.fleet = Fleet(tmp, {"ntp_servers": ["127.0.0.1:%d" % self.sntp.port],
                                 "heartbeat_s": 5})
        self.fleet.start()
        creds = self.fleet.provision("clock-relays-1", TENANT, NAMESPACE, "relays")
        self.api_key = creds["api_key"]
        (tmp / "config.json").write_text(json.dumps(CONFIG))
        self.fleet.admin("config-set", "--id", "clock-relays-1", "--file", str(tmp / "config.json"))
        self.relays = RoleDevice(tmp, "relays", device_id="clock-relays-1",
                                 device_key=creds["device_key"], api_key=self.api_key,
                                 tenant=TENANT, namespace=NAMESPACE, config_poll_s=1,
                                 ntp_retry_s=1,
                                 service_discovery_url=self.fleet.url + "/devices")
        self.started = time.time()
        start_at_power_on(self.relays)

    def fleet_token(self, role="admin"):
        return self.fleet.admin("token", "--tenant", TENANT, "--namespace", NAMESPACE,
                                "--role", role)["token"]

    def token(self, **claims):
        """A PyJWT token with the fleet's claims; `claims` replace or (None) drop some."""
        now = int(time.time())
        body = {"sub": "t", "tenant": TENANT, "namespace": NAMESPACE, "role": "admin",
                "iss": "fleet", "aud": "iotlib", "iat": now, "exp": now + 600}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.api_key, algorithm="HS256")

    def raw(self, exp_json):
        return signed('{"sub":"t","tenant":"%s","namespace":"%s","role":"admin","iss":"fleet",'
                      '"aud":"iotlib","exp":%s}' % (TENANT, NAMESPACE, exp_json), self.api_key)

    def get(self, path, token):
        return httpx.get(self.relays.url + path, headers={"Authorization": "Bearer " + token},
                         timeout=5)

    def readyz(self):
        return httpx.get(self.relays.url + "/health/readyz", timeout=5)

    def file(self, name):
        return self.relays.dir / name

    def close(self):
        self.relays.stop()
        self.fleet.stop()
        self.sntp.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("clock"))
    yield s
    s.close()


def expired_tokens(site):
    hour_ago = int(time.time()) - 3600
    return {"expired, with iat": site.token(iat=hour_ago - 600, exp=hour_ago),
            "expired, no iat": site.token(iat=None, exp=hour_ago)}


def test_before_sync_tokens_get_503_with_retry_after_and_readyz_is_not_ready(site):
    wait_for("registered", lambda: site.readyz().json()["checks"]["registered"]["ok"])
    r = site.readyz()
    assert r.status_code == 503
    assert r.json()["checks"]["time_synced"] == {
        "required": True, "ok": False, "detail": "waiting for SNTP (lower bound 0)"}, r.text
    # a token minted by the fleet now, through curl as a user would send it
    out = subprocess.run(["curl", "-si", "-H", "Authorization: Bearer " + site.fleet_token(),
                          site.relays.url + "/gpio"], capture_output=True, text=True,
                         timeout=10).stdout
    head, body = out.split("\n\n", 1)   # text mode turned \r\n into \n
    assert head.startswith("HTTP/1.1 503"), out
    assert "Retry-After: 5" in head, out
    assert json.loads(body) == {"error": "unavailable", "detail": "clock_not_synced"}
    # no lower bound yet (first boot): an expired token cannot be told from a good one,
    # and is not accepted either
    for name, token in expired_tokens(site).items():
        assert site.get("/gpio", token).status_code == 503, name
    # what needs no clock to judge is refused at once
    r = site.get("/gpio", site.raw("1e999"))
    assert r.status_code == 401 and "malformed" in r.json()["detail"], r.text
    r = site.get("/gpio", site.token()[:-2] + "AA")
    assert r.status_code == 401 and r.json()["detail"] == "signature", r.text
    boot = json.loads(site.file("boot.json").read_text())
    assert time.gmtime(boot["boot_time"]).tm_year == 2021 and boot["time_synced"] is False
    # three failed SNTP rounds raise an alarm: held on the device, not sent stamped 2021
    wait_for("time_sync_failed raised", lambda: site.relays.metric("iot_alarms_pending"))
    time.sleep(1)
    assert site.fleet.admin("alarms", "--id", "clock-relays-1")["alarms"] == []


def test_after_sync_a_fleet_token_switches_a_relay(site):
    site.sntp.answering = True
    r = wait_for("ready", lambda: site.readyz() if site.readyz().status_code == 200 else None)
    assert r.json()["checks"]["time_synced"] == {"required": True, "ok": True, "detail": "synced"}
    token = site.fleet_token("operator")
    r = httpx.post(site.relays.url + "/gpio/relay1", json={"state": "HIGH"},
                   headers={"Authorization": "Bearer " + token}, timeout=5)
    assert r.status_code == 200 and r.json() == {"relay": "relay1", "state": "HIGH"}, r.text


def test_after_sync_expired_and_absurd_tokens_are_refused(site):
    now = int(time.time())
    refused = {name: (token, "expired") for name, token in expired_tokens(site).items()}
    refused.update({
        "exp 1e999": (site.raw("1e999"), "malformed"),
        "exp a float": (site.raw("%d.5" % (now + 600)), "malformed"),
        "exp true": (site.raw("true"), "malformed"),
        "exp negative": (site.raw("-1"), "malformed"),
        "exp huge integer": (site.raw("9" * 40), "too_far"),
        "ten years, with iat": (site.token(exp=now + 3650 * DAY), "lifetime"),
        "ten years, no iat": (site.token(iat=None, exp=now + 3650 * DAY), "too_far"),
        "iat in the future": (site.token(iat=now + 3600, exp=now + 7200), "not_yet_valid"),
    })
    for name, (token, reason) in refused.items():
        r = site.get("/gpio", token)
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["detail"].startswith(reason), (name, r.text)
    # a day's lifetime is the default maximum and still accepted
    assert site.get("/gpio", site.token(exp=now + DAY)).status_code == 200


def today(ts):
    return abs(ts - time.time()) < DAY


def test_everything_the_device_stamps_is_dated_today(site):
    boot = json.loads(site.file("boot.json").read_text())
    # re-stamped at the sync: the synced time minus the uptime, not 2021
    assert boot["time_synced"] is True
    assert site.started - 5 <= boot["boot_time"] <= time.time(), boot

    def synced_line():
        path = site.file("logs/app.log")
        for line in path.read_text().splitlines() if path.exists() else ():
            rec = json.loads(line)
            if rec["msg"] == "clock synced":
                return rec
    rec = wait_for("the 'clock synced' log line (flushed every 5 s)", synced_line, timeout=12)
    assert today(rec["ts"]) and rec["steps"] == 1, rec
    audit = [json.loads(line) for line in site.file("logs/audit.log").read_text().splitlines()]
    # the audit trail keeps commands (failed logins have a trail of their own, denial_log)
    commands = [a for a in audit if a["msg"] == "relay_command"]
    assert commands and today(commands[-1]["ts"]), audit[-3:]
    # the pump's max on-time alarm, as the fleet stores it
    r = httpx.post(site.relays.url + "/gpio/pump", json={"state": "HIGH"},
                   headers={"Authorization": "Bearer " + site.fleet_token()}, timeout=5)
    assert r.status_code == 200, r.text

    def alarm():
        got = site.fleet.admin("alarms", "--id", "clock-relays-1")["alarms"]
        return [a for a in got if a["type"] == "relay_max_on_time"]
    found = wait_for("the alarm in the fleet", alarm, timeout=15)[0]
    assert today(found["first_seen"]) and today(found["last_seen"]), found
    # the one raised before the sync was re-stamped by the clock's jump before it left
    held = [a for a in site.fleet.admin("alarms", "--id", "clock-relays-1")["alarms"]
            if a["type"] == "time_sync_failed"]
    assert held and site.started - 5 <= held[0]["first_seen"] <= time.time(), held


def test_sensor_samples_carry_the_synced_wall_time(site, tmp_path):
    # a standalone sensors device: its own NTP server from device.json, no fleet at all
    d = RoleDevice(tmp_path, "sensors", api_key=site.api_key, tenant=TENANT,
                   namespace=NAMESPACE, fields={"wave": {"source": "sim", "rate_hz": 10}},
                   ntp_servers=["127.0.0.1:%d" % site.sntp.port], ntp_retry_s=1)
    start_at_power_on(d)
    try:
        def sample():
            r = httpx.get(d.url + "/sensors", headers={"Authorization": "Bearer " + site.token()},
                          timeout=5)
            if r.status_code != 200:   # 503 until the clock is synced
                return None
            wave = r.json()["fields"]["wave"]
            # the latest sample may still be one taken before the sync (stamped 2021)
            return wave if wave["ts"] > POWER_ON * 1000 + DAY * 1000 else None
        wave = wait_for("a sample stamped after the sync", sample)
        assert abs(wave["ts"] / 1000 - time.time()) < 5, wave   # ms since 1970, now
    finally:
        d.stop()


def test_after_a_restart_the_floor_from_flash_refuses_expired_tokens_before_sync(site):
    floor = json.loads(site.file("clock.json").read_text())["floor"]
    assert site.started - 5 <= floor <= time.time()   # written at the first sync
    site.sntp.answering = False
    site.relays.stop()
    start_at_power_on(site.relays)                     # the RTC is back in 2021
    wait_for("registered", lambda: site.readyz().json()["checks"]["registered"]["ok"])
    r = site.readyz()
    assert r.status_code == 503
    assert r.json()["checks"]["time_synced"]["detail"] == "waiting for SNTP (lower bound %d)" % floor
    for name, token in expired_tokens(site).items():
        r = site.get("/gpio", token)
        assert r.status_code == 401 and r.json()["detail"] == "expired", (name, r.text)
    assert site.get("/gpio", site.fleet_token()).status_code == 503
    boot = json.loads(site.file("boot.json").read_text())
    assert boot["boot_time"] >= floor and boot["time_synced"] is False, boot  # not 2021
    site.sntp.answering = True
    wait_for("synced again", lambda: site.readyz().status_code == 200)
    assert site.get("/gpio", site.fleet_token()).status_code == 200


def test_bad_clock_inputs_get_a_clear_error_or_are_ignored(micropython, tmp_path):
    code = """
from iotlib.clock import Clock
from iotlib.storage import Storage
for text in ('{"floor": "soon"}', '{"floor": 1e999}', '{"floor": true}', '{"flo', ''):
    open("clock.json", "w").write(text)
    print("floor", repr(text), Clock(store=Storage(".")).lower_bound())
"""
    out = micropython(code, cwd=tmp_path)
    assert out.count(" 0\n") == 5, out          # a damaged floor file is no floor, no crash
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IOTLIB_SIM_RTC", "tomorrow")
        with pytest.raises(MicroPythonError) as e:
            micropython("from iotlib.clock import Clock\nClock()", cwd=tmp_path)
    assert "ValueError: IOTLIB_SIM_RTC=tomorrow: want host or unix seconds" in str(e.value)


def test_the_floor_is_written_at_the_first_sync_then_at_most_hourly(micropython, tmp_path):
    code = "\n" + device_script(__file__, "clock_floor_writes.py")
    got = dict(line.split() for line in micropython(code, cwd=tmp_path).splitlines())
    # seconds between the floor on flash and the clock (1 s of slack for a tick between)
    assert abs(int(got["first"])) <= 1 and abs(int(got["hour"])) <= 1, got
    assert abs(int(got["later"]) + 600) <= 1, got
