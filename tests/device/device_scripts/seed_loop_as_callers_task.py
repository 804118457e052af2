# Run by tests/device/test_seed_example.py.
import asyncio
from iotlib import NetworkManager, AuthManager, ConfigManager, WatchdogManager, StateManager, TimeSyncManager, AlarmManager
auth = AuthManager("device_key")
managers = (
    ("monitor", NetworkManager("SSID", "PASSWORD")),
    ("fetch_config_loop", ConfigManager("http://127.0.0.1:9/api", auth, "d", interval_s=60)),
    ("watchdog_loop", WatchdogManager("http://127.0.0.1:9/api", auth, "d", use_wdt=False)),
    ("sync_loop", TimeSyncManager(["127.0.0.1:9"], timeout_ms=100)),
    ("sync_loop", StateManager(None, auth, "d")),
    ("send_loop", AlarmManager(None, auth, "d")),
)
async def main():
    for name, m in managers:
        loop = getattr(m, name)
        first = asyncio.create_task(loop())
        await asyncio.sleep_ms(20)
        second = asyncio.create_task(loop())
        await asyncio.sleep_ms(20)
        running = first.done(), second.done()   # the copy returned at once
        await m.stop()
        await asyncio.sleep_ms(20)
        again = first.done()
        await m.start()                         # and start() runs it again after stop()
        await asyncio.sleep_ms(20)
        task = m._loop_task.task if name == "watchdog_loop" else m._task.task
        print(name, running, again, task is not None and not task.done())
        await m.stop()
asyncio.run(main())
