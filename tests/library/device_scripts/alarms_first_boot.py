# First boot: alarms raised while the service is down, kept across the reboot (after the prelude); run by tests/library/test_alarm_manager.py.
from iotlib.registration import Registration
reg = Registration(SD, auth, DEVICE, role="sensors")
alarms = AlarmManager(None, auth, DEVICE, store=store, capacity=5, log=log,
                      autostart=False)                # this script flushes by hand
async def crashy():
    raise ValueError("adc stuck")
async def main():
    await reg.register()
    alarms.url = reg.service("alarms")
    print("REGISTERED")
    while True:                              # the test stops the service now
        try:
            await reg.http.request("GET", SD[:-4] + "/health/livez")
        except OSError:
            break
        await asyncio.sleep_ms(100)
    for i in range(3):
        alarms.report_alarm({"type": "overtemp", "severity": "critical", "source": "sensor1",
                             "message": "%d C" % (80 + i)})
        await asyncio.sleep_ms(20)
    alarms.report_alarm({"type": "fan", "severity": "warning", "source": "fan1"})
    alarms.report_alarm({"type": "a", "severity": "info"})
    alarms.report_alarm({"type": "b", "severity": "info"})
    await alarms.guard(crashy(), "sampler")             # an escaping exception becomes an alarm
    alarms.report_alarm({"type": "c", "severity": "info"})   # full: the oldest info alarm goes
    print("FLUSHED", await alarms.flush())
    print("PENDING", len(alarms.pending), alarms.dropped)
    # power cut: no clean shutdown
asyncio.run(main())
