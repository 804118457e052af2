# Run by tests/library/test_timesync_manager.py after the prelude; ARGS: the SNTP responder's port.
import json, os
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.registration import Registration
reg = Registration(SD, auth, DEVICE, role="relays")
alarms = AlarmManager(None, auth, DEVICE, store=store, log=log, autostart=False)  # flushed here
ntp = TimeSyncManager(["127.0.0.1:%d" % ARGS["sntp_port"]], timeout_ms=300, fail_alarm_after=3, alarms=alarms,
                      drift_alarm_s=2)
async def step(name):                    # the test moves the SNTP server, then says go
    print("WAIT", name)
    while True:
        try:
            os.stat(name)
            return
        except OSError:
            await asyncio.sleep_ms(50)
async def main():
    await reg.register()
    alarms.url = reg.service("alarms")
    print("FIRST", await ntp.sync_once(), ntp.offset_us // 1000, alarms.active)
    await step("go-drift")
    print("DRIFTED", await ntp.sync_once(), ntp.offset_us // 1000, await alarms.flush())
    await step("go-again")               # off again, within the same episode
    print("AGAIN", await ntp.sync_once(), ntp.offset_us // 1000, await alarms.flush())
    await step("go-steady")
    print("STEADY", await ntp.sync_once(), ntp.offset_us // 1000, await alarms.flush(),
          alarms.active)
    await step("go-silent")              # the server stops answering
    for i in range(4):
        await ntp.sync_once()
    print("FAILING", ntp.failures, await alarms.flush())
    await step("go-back")
    print("BACK", await ntp.sync_once(), await alarms.flush(), alarms.active, alarms.cleared)
asyncio.run(main())
