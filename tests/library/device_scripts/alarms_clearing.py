# An alarm raised, then cleared when its condition ends (after the prelude); run by tests/library/test_alarm_manager.py.
from iotlib.registration import Registration
reg = Registration(SD, auth, DEVICE, role="sensors")
alarms = AlarmManager(None, auth, DEVICE, store=store, log=log, autostart=False)  # flushed here
async def main():
    await reg.register()
    alarms.url = reg.service("alarms")
    alarms.report_alarm({"type": "threshold_high", "severity": "warning"})
    print("SENT", await alarms.flush())
    alarms.clear_alarm("threshold_high")
    alarms.clear_alarm("threshold_low")            # never raised: the fleet ignores it
    alarms.report_alarm({"type": "fan", "severity": "warning", "source": "fan1"})
    alarms.clear_alarm("fan", "fan1")
    alarms.report_alarm({"type": "fan", "severity": "warning", "source": "fan1"})  # back: not cleared
    print("CLEARED", await alarms.flush(), alarms.cleared)
asyncio.run(main())
