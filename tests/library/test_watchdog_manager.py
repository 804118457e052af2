"""Registration, heartbeats and escalation to a reset, against the real fleet-server."""
import json

import pytest

from harness.fleet_device import Device, prelude
from harness.run import SIM_EXIT_RESET, SIM_EXIT_WDT
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix

DEVICE_SCRIPT = """
alarms = AlarmManager(None, auth, DEVICE, store=store, log=log)
wd = WatchdogManager(SD, auth, DEVICE, boot=boot, alarms=alarms, heartbeat_s=0.3,
                     max_missed=3, alarm_after=2, wdt_timeout_ms=3000, log=log)
async def main():
    wd.registration.on_registered(lambda r: print("REGISTERED", r["heartbeat_s"], sorted(r["services"])))
    await wd.start()
    n = 0
    while True:
        if wd.heartbeats != n:
            n = wd.heartbeats
            print("HEARTBEAT", n)
        await asyncio.sleep_ms(50)
asyncio.run(main())
"""


def test_registers_heartbeats_escalates_and_resets(fleet, tmp_path):
    creds = fleet.provision("relay-01")
    fleet.start()
    code = prelude(creds, fleet.url, tmp_path / "dev") + DEVICE_SCRIPT
    dev = Device(code, tmp_path)
    try:
        dev.expect(r"^BOOT 1 power 1$")
        m = dev.expect(r"^REGISTERED (\d+) \['alarms', 'config', 'state', 'updates'\]")
        assert m.group(1) == "5"                      # heartbeat_s from the server's settings
        dev.expect(r"^HEARTBEAT 3$")
        last = fleet.admin("heartbeat", "--id", "relay-01")["heartbeat"]
        assert last["boot_count"] == 1 and last["free_heap"] > 0, last

        fleet.stop()                                   # discovery goes away
        dev.expect(r"missed heartbeat 1")
        dev.expect(r"alarm heartbeat_missed watchdog warning 1")   # escalation 1: alarm
        dev.expect(r"missed heartbeat 3")
        dev.expect(r"alarm watchdog_reset watchdog critical 1")
        dev.expect(r"^SIMRESET")                       # escalation 3: reset
        assert dev.wait() == SIM_EXIT_RESET
    finally:
        dev.kill()
    boot = json.loads((tmp_path / "dev" / "boot.json").read_text())
    assert boot["pending_cause"] == "escalation"

    # the next boot knows why it happened and counts it
    fleet.start()
    dev = Device(code, tmp_path)
    try:
        dev.expect(r"^BOOT 2 escalation 2$")           # second boot without mark_good()
        dev.expect(r"^HEARTBEAT 1$")
        # an operator's reboot order comes back with a heartbeat reply
        fleet.admin("action", "--id", "relay-01", "reboot")
        dev.expect(r"action reboot")
        assert dev.wait() == SIM_EXIT_RESET
    finally:
        dev.kill()
    assert json.loads((tmp_path / "dev" / "boot.json").read_text())["pending_cause"] == "requested"


def test_hung_event_loop_is_reset_by_the_simulated_wdt(tmp_path):
    code = device_script(__file__, "hung_loop_wdt.py")
    env = script_env(store=str(tmp_path / "dev"))
    dev = Device(code, tmp_path, env)
    dev.expect(r"^BOOT 1 power 0$")
    dev.expect(r"^HEALTHY$")
    dev.expect(r"^SIMWDT: watchdog reset")
    assert dev.wait() == SIM_EXIT_WDT
    assert "SURVIVED" not in "\n".join(dev.lines)
    dev = Device(code, tmp_path, env)
    dev.expect(r"^BOOT 2 wdt 1$")
    dev.expect(r"^HEALTHY$")
    assert dev.wait() == 0


MISSED_THEN_BACK = """
alarms = AlarmManager(None, auth, DEVICE, store=store, log=log, autostart=False)  # flushed here
wd = WatchdogManager(SD, auth, DEVICE, alarms=alarms, heartbeat_s=0.3, max_missed=50,
                     alarm_after=2, use_wdt=False, log=log)
wd.registration.on_registered(lambda r: setattr(alarms, "url", wd.registration.service("alarms")))
async def main():
    await wd.start()
    n = 0
    while True:
        if wd.heartbeats != n:
            n = wd.heartbeats
            print("HEARTBEAT", n, wd.missed, alarms.active, [c["type"] for c in alarms.cleared])
            if alarms.cleared:
                print("FLUSHED", await alarms.flush(), alarms.cleared)
        await asyncio.sleep_ms(50)
asyncio.run(main())
"""


def test_heartbeat_missed_alarm_is_cleared_when_heartbeats_come_back(fleet, tmp_path):
    import httpx
    creds = fleet.provision("relay-07")
    fleet.start()
    dev = Device(prelude(creds, fleet.url, tmp_path / "dev") + MISSED_THEN_BACK, tmp_path)
    try:
        dev.expect(r"^HEARTBEAT 2 0 \[\] \[\]$")
        fleet.stop()
        dev.expect(r"missed heartbeat 2")
        dev.expect(r"^alarm heartbeat_missed watchdog warning 1$")
        dev.expect(r"missed heartbeat 3")                  # one alarm per episode
        fleet.start()
        # the first answered heartbeat ends the episode; the fleet is told it is cleared
        dev.expect(r"^HEARTBEAT \d+ 0 \[\] \[.heartbeat_missed.\]$", timeout=30)
        dev.expect(r"^FLUSHED True \[\]$")
    finally:
        dev.kill()
    # expect() took the one alarm line: no second one in the episode
    assert not any(line.startswith("alarm heartbeat_missed") for line in dev.lines), dev.lines
    token = fleet.admin("token", "--tenant", "acme", "--namespace", "plant1",
                        "--role", "admin")["token"]
    res = httpx.get(fleet.url + "/alarms", params={"device_id": "relay-07"},
                    headers={"Authorization": "Bearer " + token}, timeout=10)
    alarm = {a["type"]: a for a in res.json()["alarms"]}["heartbeat_missed"]
    assert (alarm["status"], alarm["changed_by"], alarm["source"]) == \
        ("cleared", "device", "watchdog")
