# A loop that stops checking in: WatchdogManager stops feeding machine.WDT; run by tests/library/test_watchdog_manager_rp2.py.
import asyncio, machine
from iotlib.storage import Storage
from iotlib.boot_counter import BootCounter
from iotlib.watchdog_manager import WatchdogManager
store = Storage("/fleetmgr")
boot = BootCounter(store)
boot.record_boot()
class NoRegistration:
    url = None; heartbeat_s = 60; http = None
wd = WatchdogManager(None, None, "d", registration=NoRegistration(), boot=boot,
                     wdt_timeout_ms=500, feed_ms=100)
wd.watch("worker", 250)
async def worker():
    for i in range(12):                 # 0.6 s of healthy work (> the WDT timeout): fed all along
        wd.checkin("worker")
        await asyncio.sleep_ms(50)
    store.write_json("stage.json", {"stage": "stalled", "boot": boot.boot_count})
    await asyncio.sleep(5)              # stuck: no more check-ins, the event loop itself is fine
async def main():
    wd.start_feeder()
    await worker()
    print("SURVIVED")
asyncio.run(main())
