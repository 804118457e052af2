# The RELAYS image's full boot in rp2040py, requests through the app in process, free heap; run by tests/device/test_device_e2e.py.
import gc, json, os, asyncio
with open("/device.json", "w") as f:
    json.dump({"device_id": "emu-1", "device_key": "k" * 64, "api_key": "a" * 64,
               "tenant": "acme", "namespace": "plant1", "port": 8080,
               "service_discovery_url": "http://10.9.9.9/api"}, f)
import iot_boot
device = iot_boot.prepare()

async def request(path, role):
    raw = b"GET %s HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % (
        path, device.auth.issue("t", role))
    w = Writer()
    await device.controller.server.app.handle_request(Reader(raw), w)
    return w.data.split(b"\r\n", 1)[0].decode()

async def main():
    # device.main() without the listening socket (this image has no network stack)
    device.alarms.install()
    await device.start()
    await asyncio.sleep(2)  # registration has failed at least once, and retries
    print("unsynced", await request(b"/gpio", "admin"), device.health.readyz()[1]["time_synced"])
    # no radio here, so no SNTP: its answer, as TimeSyncManager hands it over (machine.RTC)
    device.clock.sync(1767225600 * 1000000 - device.clock.raw_us())
    print("gpio", await request(b"/gpio", "admin"))
    print("ota", await request(b"/ota/state", "viewer"), await request(b"/ota/state", "admin"))
    gc.collect()
    print("free_heap", gc.mem_free())
    ok, checks = device.health.readyz()
    print("registered", checks["registered"]["ok"], "attempts", device.link.attempts)
    print("config", device.config.source, "components", sorted(n for n, _ in device.components.managers))
    await device.stop()
asyncio.run(main())
os.remove("/device.json")
