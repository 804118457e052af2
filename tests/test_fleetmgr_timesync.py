"""TimeSyncManager: real SNTP over UDP against chronyd and a test responder on loopback."""
import getpass
import os
import pathlib
import subprocess
import time

import pytest

from test_fleetmgr_helpers import Device, SntpResponder, free_port

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
    code = """
import asyncio, time
from iotlib.timesync_manager import TimeSyncManager
from iotlib.alarm_manager import AlarmManager
alarms = AlarmManager(None, None, "d", log=print)
ntp = TimeSyncManager(["127.0.0.1:%d"], timeout_ms=300, fail_alarm_after=3, alarms=alarms)
async def main():
    print("FIRST", await ntp.sync_once(), "%%.3f" %% ntp.offset)
    await asyncio.sleep_ms(1500)
    print("SECOND", await ntp.sync_once(), "%%.3f" %% ntp.offset, "%%d" %% ntp.drift_ppm,
          ntp.clock.steps)
    print("READY")
    await asyncio.sleep_ms(1000)              # the test closes the responder meanwhile
    while True:
        ok = await ntp.sync_once()
        print("ROUND", ok, ntp.failures, ntp.synced)
        if ntp.failures >= 4:
            break
        await asyncio.sleep_ms(100)
asyncio.run(main())
""" % sntp.port
    dev = Device(code, tmp_path)
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
    root = pathlib.Path(__file__).resolve().parent.parent
    closed = "http://127.0.0.1:9"
    env = dict(os.environ, http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed,
               HTTPS_PROXY=closed)
    proc = subprocess.run([str(root / "firmware" / "fetch_chrony.sh")], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(CHRONYD)
    assert "version 4." in subprocess.run([str(CHRONYD), "-v"], capture_output=True,
                                          text=True, timeout=10).stdout
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "chrony"],
                            capture_output=True, text=True).stdout
    assert "install ok installed" not in status, status   # systemd-timesyncd left alone
