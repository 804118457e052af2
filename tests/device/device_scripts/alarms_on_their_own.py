# An AlarmManager of the seed's form sending on its own (appended to the prelude); run by tests/device/test_seed_example.py.
alarms = AlarmManager(SD, auth, DEVICE)                 # never started: sends by itself
managed = AlarmManager(SD, auth, DEVICE, autostart=False)
stopped = AlarmManager(SD, auth, DEVICE)
reg = Registration(SD, auth, DEVICE, role="relays")
async def main():
    await reg.register()
    await stopped.stop()
    for a, kind in ((alarms, "own"), (managed, "managed"), (stopped, "stopped")):
        a.report_alarm({"type": kind, "severity": "warning", "source": "t"})
    while alarms.pending:
        await asyncio.sleep_ms(50)
    await asyncio.sleep_ms(300)
    print("SENT", alarms.sent, alarms._task.running(), managed._task.running(),
          stopped._task.running(), managed.pending[0]["type"], stopped.pending[0]["type"])
    print("FLUSHED", await managed.flush(), managed.sent)   # the owner sends when it wants
asyncio.run(main())
