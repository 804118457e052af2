# A SensorsController with in-memory streams on the SENSORS image in rp2040py; run by tests/roles/test_sensors_rp2.py.
import gc, asyncio
from sensors_controller import SensorsController
from iotlib.auth_manager import AuthManager

auth = AuthManager("dk", tenant="t", namespace="n", api_key="k" * 32)
auth.clock.sync(1767225600 * 1000000 - auth.clock.raw_us())  # SNTP's answer sets machine.RTC
ctl = SensorsController(device_id="emu", auth=auth,
                        fields={"volts": {"source": "adc1", "rate_hz": 20},
                                "level": {"source": "adc2", "rate_hz": 10}})
token = auth.issue("op", "viewer")

async def get(path):
    raw = b"GET %s HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n" % (path, token)
    w = Writer()
    await ctl.server.app.handle_request(Reader(raw), w)
    return w.data.split(b"\r\n", 1)[0], w.data.rsplit(b"\r\n", 1)[1]
