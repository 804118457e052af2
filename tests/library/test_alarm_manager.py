"""AlarmManager: deduplication, the bounded buffer, and alarms surviving a reboot while the
alarms service is down, delivered to the real fleet-server once it is back."""
import json

import pytest

from harness.fleet_device import Device, prelude
from harness.scripts import device_script, script_env

pytestmark = pytest.mark.unix

FIRST_BOOT = "\n" + device_script(__file__, "alarms_first_boot.py")

SECOND_BOOT = "\n" + device_script(__file__, "alarms_second_boot.py")


def test_alarms_deduplicated_and_surviving_a_reboot_while_the_service_is_down(fleet, tmp_path):
    creds = fleet.provision("sensor-07", role="sensors")
    fleet.start()
    store = tmp_path / "dev"
    dev = Device(prelude(creds, fleet.url, store) + FIRST_BOOT, tmp_path)
    dev.expect(r"^REGISTERED$")
    fleet.stop()
    dev.expect(r"^alarm overtemp sensor1 critical 3$")
    dev.expect(r"^alarm task_crashed sampler critical 1$")
    assert dev.expect(r"^FLUSHED (\w+)$").group(1) == "False"
    assert dev.expect(r"^PENDING (\d+) (\d+)$").groups() == ("5", "1")
    assert dev.wait() == 0
    saved = json.loads((store / "alarms.json").read_text())
    assert sorted(a["type"] for a in saved["alarms"]) == ["b", "c", "fan", "overtemp", "task_crashed"]

    # reboot while the service is still down; it comes back a moment later
    dev = Device(prelude(creds, fleet.url, store) + SECOND_BOOT, tmp_path)
    m = dev.expect(r"^RESTORED (\d+) (\d+) (.*)$")
    assert m.group(1, 2) == ("5", "1") and "('overtemp', 3)" in m.group(3)
    fleet.start()
    dev.expect(r"^REGISTERED$")
    assert dev.expect(r"^DELIVERED (\d+)$").group(1) == "5"
    assert dev.wait() == 0

    listed = fleet.admin("alarms", "--id", "sensor-07")
    by_type = {a["type"]: a for a in listed["alarms"]}
    assert sorted(by_type) == ["b", "c", "fan", "overtemp", "task_crashed"]
    hot = by_type["overtemp"]
    assert hot["count"] == 3 and hot["severity"] == "critical" and hot["source"] == "sensor1"
    assert hot["first_seen"] < hot["last_seen"] and hot["message"] == "82 C"
    assert by_type["task_crashed"]["message"] == "ValueError: adc stuck"
    assert by_type["b"]["source"] == "device"
    assert listed["dropped"] == 1                       # fleet-admin: this device's cumulative count
    assert json.loads((store / "alarms.json").read_text())["alarms"] == []


CLEARING = "\n" + device_script(__file__, "alarms_clearing.py")


def test_a_condition_gone_on_the_device_clears_its_alarm_in_the_fleet(fleet, tmp_path):
    import httpx
    creds = fleet.provision("sensor-08", role="sensors")
    fleet.start()
    dev = Device(prelude(creds, fleet.url, tmp_path / "dev") + CLEARING, tmp_path)
    assert dev.expect(r"^SENT (\w+)$").group(1) == "True"
    assert dev.expect(r"^CLEARED (\w+) (.*)$").groups() == ("True", "[]")
    assert dev.wait() == 0
    token = fleet.admin("token", "--tenant", "acme", "--namespace", "plant1", "--role", "admin")["token"]
    res = httpx.get(fleet.url + "/alarms", params={"device_id": "sensor-08"},
                    headers={"Authorization": "Bearer " + token}, timeout=10)
    by_type = {a["type"]: a for a in res.json()["alarms"]}
    assert (by_type["threshold_high"]["status"], by_type["threshold_high"]["changed_by"]) == ("cleared", "device")
    assert by_type["fan"]["status"] == "open" and "threshold_low" not in by_type


OVERTEMP = "\n" + device_script(__file__, "overtemp_alarm.py")

def test_overtemp_clears_in_the_fleet_when_the_temperature_is_back_under_its_threshold(fleet, tmp_path):
    import httpx
    creds = fleet.provision("sensor-09", role="sensors")
    fleet.start()
    token = fleet.admin("token", "--tenant", "acme", "--namespace", "plant1", "--role", "admin")["token"]

    def overtemp():
        res = httpx.get(fleet.url + "/alarms", params={"device_id": "sensor-09"},
                        headers={"Authorization": "Bearer " + token}, timeout=10)
        return {a["type"]: a for a in res.json()["alarms"]}["threshold_high"]

    def boot(temperatures, run=False):
        return Device(prelude(creds, fleet.url, tmp_path / "dev") + OVERTEMP, tmp_path,
                      script_env(temperatures=temperatures, run=run))

    # too hot for three samples: one alarm; back under 50: cleared, once
    dev = boot([30, 60, 61, 62, 40, 41, 42])
    assert [int(dev.expect(r"^SAMPLE (\d+)$").group(1)) for _ in range(7)] == \
        [30, 60, 61, 62, 40, 41, 42]
    dev.expect(r"^alarm threshold_high cpu warning 1$")
    assert dev.expect(r"^FLUSHED (.*)$").group(1) == "True [] []"
    assert dev.wait() == 0
    assert not any(line.startswith("alarm") for line in dev.lines)
    alarm = overtemp()
    assert (alarm["status"], alarm["changed_by"], alarm["source"], alarm["count"]) == \
        ("cleared", "device", "cpu", 1)
    value, sign, bound = alarm["message"].split()
    assert abs(float(value) - 60) < 0.5 and (sign, bound) == (">", "50")

    # hot again, and the device loses power while it is: the alarm reopens
    dev = boot([70, 71])
    dev.expect(r"^alarm threshold_high cpu warning 1$")
    assert dev.expect(r"^FLUSHED (.*)$").group(1) == "True [['threshold_high', 'cpu']] []"
    assert dev.wait() == 0
    assert overtemp()["status"] == "open"
    # it has cooled down when it comes back: the running role's first samples clear it
    dev = boot([], run=True)
    assert dev.expect(r"^FLUSHED (.*)$").group(1) == "True [['threshold_high', 'cpu']] []"
    assert dev.expect(r"^RUNNING (.*)$").group(1) == \
        "True [] [('threshold_high', 'cpu')]"
    assert dev.expect(r"^FLUSHED (.*)$").group(1) == "True [] []"
    assert dev.wait() == 0
    alarm = overtemp()
    # two episodes, two reports: not one per hot sample
    assert (alarm["status"], alarm["changed_by"], alarm["count"]) == ("cleared", "device", 2)
