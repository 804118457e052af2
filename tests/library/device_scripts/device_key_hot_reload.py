# Run by tests/library/test_auth.py.
import asyncio, time
from iotlib.auth_manager import AuthManager
auth = AuthManager(key_file="device.key", poll_s=0)
print(auth.device_key())
auth.set_device_token("tok", auth.clock.time() + 100)
print(auth.device_token(), auth.needs_refresh())
auth.clock.offset_s = 200
print(auth.device_token())
async def refresh():
    return "tok2", auth.clock.time() + 3600
auth.refresh = refresh
async def main():
    await auth.start()
    time.sleep(1.1)  # a new mtime second
    with open("device.key", "w") as f: f.write("second-key")
    await asyncio.sleep_ms(100)
    print(auth.device_key(), auth.device_token())
    await auth.stop()
asyncio.run(main())
