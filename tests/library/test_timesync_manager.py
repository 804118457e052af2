"""TimeSyncManager: real SNTP over UDP against chronyd and a test responder on loopback."""
import getpass
import os
import pathlib
import subprocess
import time

import pytest

from fleet_devtools.ports import free_port
from fleet_devtools.sntp import SntpResponder
from harness.fleet_device import Device, prelude
from harness.run import ROOT
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix

# unpacked from Debian's package by firmware/fetch_chrony.sh (make test runs it); the
# chrony package itself is never installed
CHRONYD = pathlib.Path(os.environ.get("PIOT_CACHE", pathlib.Path.home() / ".cache/pico-w-iot"),
                       "chrony/root/usr/sbin/chronyd")


@pytest.fixture
def chronyd(tmp_path):
    """Debian's chronyd serving NTP on a high loopback port; -x: never touches the host clock."""
    port = free_port(__import__("socket").SOCK_DGRAM)
    conf = tmp_path / "chrony.conf"
    conf.write_text("port %d\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 1\n"
                    "cmdport 0\npidfile %s/chronyd.pid\ndriftfile %s/drift\n"
                    % (port, tmp_path, tmp_path))
    if not CHRONYD.exists():
        pytest.fail("%s is missing: run firmware/fetch_chrony.sh (make test does)" % CHRONYD)
    # -u: stay the current user (the package's _chrony user does not exist without it)
    proc = subprocess.Popen([str(CHRONYD), "-d", "-x", "-u", getpass.getuser(), "-f", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read().decode()
    yield port
    proc.terminate()
    proc.wait(10)


def test_syncs_against_chrony_with_the_constructor_list_as_fallback(chronyd, tmp_path):
    dead = free_port(__import__("socket").SOCK_DGRAM)   # nobody answers there
    code = """
import asyncio, time
from iotlib.timesync_manager import TimeSyncManager
ntp = TimeSyncManager(["127.0.0.1:%d"], timeout_ms=300)
ntp.set_servers(["127.0.0.1:%d"])          # what configuration says: tried first, dead
print("BEFORE", ntp.synced, ntp.time(), time.gmtime(ntp.clock.time())[0], ntp.clock.trusted)
async def main():
    await ntp.start()
    await asyncio.wait_for(ntp.wait_synced(), 5)
    print("SYNCED", ntp.server, ntp.offset_us // 1000000, ntp.delay_us, ntp.syncs, ntp.clock.steps)
    print("NOW", ntp.clock.now_us() - time.time_ns() // 1000, ntp.clock.trusted)
    await ntp.stop()
asyncio.run(main())
""" % (chronyd, dead)
    # the simulated RTC starts where the RP2040's does: 2021-01-01
    dev = Device(code, tmp_path, env={"IOTLIB_SIM_RTC": "1609459200"})
    dev.expect(r"^BEFORE False None 2021 False$")
    m = dev.expect(r"^SYNCED 127\.0\.0\.1:(\d+) (\d+) (\d+) 1 1$")
    assert int(m.group(1)) == chronyd
    assert abs(int(m.group(2)) - (time.time() - 1609459200)) < 5   # the whole 2021 gap
    assert int(m.group(3)) < 50000                                   # delay under 50 ms
    m = dev.expect(r"^NOW (-?\d+) True$")
    assert abs(int(m.group(1))) < 50000          # the RTC now agrees with chrony's (host) time
    assert dev.wait() == 0


def test_offset_drift_and_alarm_after_repeated_failure(tmp_path):
    sntp = SntpResponder(offset_s=120.0, ppm=20000)   # 2 minutes ahead, running 2 % fast
    code = device_script(__file__, "timesync_drift_and_failures.py")
    dev = Device(code, tmp_path, script_env(sntp_port=sntp.port))
    try:
        m = dev.expect(r"^FIRST True (\S+)$")
        assert abs(float(m.group(1)) - 120.0) < 0.1
        # the first answer stepped the RTC by 2 minutes: what is left is the 2 % drift
        m = dev.expect(r"^SECOND True (\S+) (-?\d+) 1$")
        assert abs(float(m.group(1)) - 0.03) < 0.02
        assert 10000 < int(m.group(2)) < 30000          # 2 % drift, measured over 1.5 s
        dev.expect(r"^READY$")
        assert sntp.answered == 2
    finally:
        sntp.close()
    dev.expect(r"^ROUND False 1 True$")                 # still synced, just stale
    dev.expect(r"^ROUND False 2 True$")
    dev.expect(r"^alarm time_sync_failed timesync warning 1$")
    dev.expect(r"^ROUND False 3 True$")
    dev.expect(r"^ROUND False 4 True$")
    assert dev.wait() == 0
    assert not any(line.startswith("alarm") for line in dev.lines)   # one alarm, not one per round


def test_chronyd_comes_from_the_cache_and_the_package_is_not_installed():
    # warm cache: no network at all (every proxy at a closed port), same path, it runs here
    closed = "http://127.0.0.1:9"
    env = dict(os.environ, http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed,
               HTTPS_PROXY=closed)
    proc = subprocess.run([str(ROOT / "firmware" / "fetch_chrony.sh")], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(CHRONYD)
    assert "version 4." in subprocess.run([str(CHRONYD), "-v"], capture_output=True,
                                          text=True, timeout=10).stdout
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "chrony"],
                            capture_output=True, text=True).stdout
    assert "install ok installed" not in status, status   # systemd-timesyncd left alone


DRIFT = "\n" + device_script(__file__, "clock_drift_alarms.py")

def test_clock_drift_and_failing_sync_alarms_raise_once_and_clear_in_the_fleet(fleet, tmp_path):
    import httpx
    sntp = SntpResponder()
    creds = fleet.provision("clock-07")
    fleet.start()
    token = fleet.admin("token", "--tenant", "acme", "--namespace", "plant1", "--role", "admin")["token"]

    def alarm(type_):
        res = httpx.get(fleet.url + "/alarms", params={"device_id": "clock-07"},
                        headers={"Authorization": "Bearer " + token}, timeout=10)
        found = [a for a in res.json()["alarms"] if a["type"] == type_]
        return found[0] if found else None

    def go(name):
        dev.expect(r"^WAIT %s$" % name)
        (tmp_path / name).touch()
    dev = Device(prelude(creds, fleet.url, tmp_path / "dev") + DRIFT, tmp_path,
                 script_env(sntp_port=sntp.port))
    try:
        ok, ms, active = dev.expect(r"^FIRST (\w+) (-?\d+) (.*)$").groups()
        assert (ok, active) == ("True", "[]") and abs(int(ms)) < 300      # host time: in bounds
        sntp.offset_s = 5.0                              # the device's clock is 5 s behind now
        go("go-drift")
        ok, ms, sent = dev.expect(r"^DRIFTED (\w+) (-?\d+) (\w+)$").groups()
        assert (ok, sent) == ("True", "True") and abs(int(ms) - 5000) < 300
        dev.expect(r"^alarm clock_drift timesync warning 1$")
        raised = alarm("clock_drift")
        assert raised["status"] == "open" and raised["source"] == "timesync"
        assert raised["message"].startswith("clock off by 4") or \
            raised["message"].startswith("clock off by 5"), raised
        assert raised["count"] == 1
        sntp.offset_s = 10.0                             # another 5 s: still drifting
        go("go-again")
        ok, ms, sent = dev.expect(r"^AGAIN (\w+) (-?\d+) (\w+)$").groups()
        assert (ok, sent) == ("True", "True") and abs(int(ms) - 5000) < 300
        assert alarm("clock_drift")["count"] == 1       # one alarm per episode, no storm
        go("go-steady")                                  # the clock was stepped: within bounds
        ok, ms, sent, active = dev.expect(r"^STEADY (\w+) (-?\d+) (\w+) (.*)$").groups()
        assert (ok, sent, active) == ("True", "True", "[]") and abs(int(ms)) < 2000
        cleared = alarm("clock_drift")
        assert (cleared["status"], cleared["changed_by"]) == ("cleared", "device")

        sntp.answering = False
        go("go-silent")
        assert dev.expect(r"^FAILING (\d+) (\w+)$").groups() == ("4", "True")
        dev.expect(r"^alarm time_sync_failed timesync warning 1$")
        failing = alarm("time_sync_failed")
        assert failing["status"] == "open" and failing["count"] == 1
        sntp.answering = True
        go("go-back")
        assert dev.expect(r"^BACK (\w+) (\w+) (.*)$").groups() == ("True", "True", "[] []")
        assert dev.wait() == 0
    finally:
        dev.kill()
        sntp.close()
    assert (alarm("time_sync_failed")["status"], alarm("time_sync_failed")["changed_by"]) == \
        ("cleared", "device")
    assert alarm("clock_drift")["status"] == "cleared"
    assert not any(line.startswith("alarm") for line in dev.lines)  # each raised once
