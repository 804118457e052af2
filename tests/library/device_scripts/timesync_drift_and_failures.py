# Run by tests/library/test_timesync_manager.py; ARGS: the SNTP responder's port.
import asyncio, json, os, time
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.timesync_manager import TimeSyncManager
from iotlib.alarm_manager import AlarmManager
alarms = AlarmManager(None, None, "d", log=print)
ntp = TimeSyncManager(["127.0.0.1:%d" % ARGS["sntp_port"]], timeout_ms=300, fail_alarm_after=3, alarms=alarms)
async def main():
    print("FIRST", await ntp.sync_once(), "%.3f" % ntp.offset)
    await asyncio.sleep_ms(1500)
    print("SECOND", await ntp.sync_once(), "%.3f" % ntp.offset, "%d" % ntp.drift_ppm,
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
