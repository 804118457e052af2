# Second boot: the kept alarms reach the service once it is up (after the prelude); run by tests/library/test_alarm_manager.py.
from iotlib.registration import Registration
reg = Registration(SD, auth, DEVICE, role="sensors")
alarms = AlarmManager(SD, auth, DEVICE, store=store, capacity=5, interval_ms=200, log=log)
print("RESTORED", len(alarms.pending), alarms.dropped,
      [(a["type"], a["count"]) for a in alarms.pending])
async def main():
    await alarms.start()
    while True:
        try:
            await reg.ensure()
            break
        except OSError:
            await asyncio.sleep_ms(200)
    print("REGISTERED")
    while alarms.pending or alarms.dropped:
        await asyncio.sleep_ms(100)
    print("DELIVERED", alarms.sent)
    await alarms.stop()
asyncio.run(main())
