# Run by tests/library/test_watchdog_manager.py; ARGS: the storage folder.
import asyncio, json, os, time
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.storage import Storage
from iotlib.boot_counter import BootCounter
from iotlib.watchdog_manager import WatchdogManager
store = Storage(ARGS["store"])
boot = BootCounter(store)
boot.record_boot()
print("BOOT", boot.boot_count, boot.reset_cause, boot.report()["wdt_resets"])
class NoRegistration:
    url = "http://127.0.0.1:9/api"; heartbeat_s = 60; http = None
wd = WatchdogManager(None, None, "d", registration=NoRegistration(), boot=boot, wdt_timeout_ms=500, feed_ms=100)
async def main():
    wd.start_feeder()
    for i in range(10):                 # healthy: fed every 100 ms, well inside 500 ms
        await asyncio.sleep_ms(100)
    print("HEALTHY")
    if boot.boot_count == 1:
        time.sleep(3)                   # the event loop hangs: nobody feeds
        print("SURVIVED")
    await wd.stop()
asyncio.run(main())
