# Run by tests/device/test_seed_example.py; ARGS: the port the controller serves on.
import asyncio, json, os, socket
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from sensors_controller import SensorsController
controller = SensorsController(wifi_ssid="SSID", device_id="s1", device_key="k",
                               service_discovery_url="http://127.0.0.1:9/api/devices",
                               host="127.0.0.1", port=ARGS["port"], fields={"t": {"source": "sim", "rate_hz": 5}})
def listening():
    s = socket.socket()
    try:
        s.connect(socket.getaddrinfo("127.0.0.1", ARGS["port"])[0][-1])
        return True
    except OSError:
        return False
    finally:
        s.close()
async def main():
    task = asyncio.create_task(controller.main())
    await asyncio.sleep_ms(500)
    device = controller.device
    print("serving", listening(), device.controller is controller, device.link.attempts >= 1)
    await controller.stop()
    await asyncio.sleep_ms(100)
    print("stopped", task.done(), listening(), device.watchdog._loop_task.running(),
          device.network._task.running())
asyncio.run(main())
