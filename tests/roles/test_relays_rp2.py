"""The RELAYS image in the emulated RP2040 (rp2040py, no network): the same Python API
switches the real GPIO outputs, and a full HTTP request (JWT, RBAC, relay write) runs
through the Microdot app over in-memory streams. Also the free heap once it all runs."""
import re

import pytest

from harness.run import run_rp2

pytestmark = pytest.mark.rp2

_SETUP = """
import gc, machine, asyncio
from relays_controller import RelaysController
from iotlib.auth_manager import AuthManager

auth = AuthManager("dk", tenant="t", namespace="n", api_key="k" * 32)
auth.clock.sync(1767225600 * 1000000 - auth.clock.raw_us())  # SNTP's answer sets machine.RTC
ctl = RelaysController(device_id="emu", auth=auth, relay_pins={"relay1": 2, "relay2": 3},
                       relays=None, interlocks=[["relay1", "relay2"]])

SIO_GPIO_OUT, SIO_GPIO_OE = 0xd0000010, 0xd0000020  # the chip's output registers

def pins():
    out = machine.mem32[SIO_GPIO_OUT]
    return (out >> 2) & 1, (out >> 3) & 1
"""


def test_relays_image_switches_pins_through_the_python_api():
    out = run_rp2("RELAYS", _SETUP + """
ctl.setup_relays()
print("boot", pins(), "oe", (machine.mem32[SIO_GPIO_OE] >> 2) & 3)
ctl.switch({"relay1": True}, "emu")
print("relay1", pins(), ctl.read())
try:
    ctl.switch({"relay2": True}, "emu")
except ValueError as e:
    print("refused", e)
print("after", pins())
ctl.switch({"relay1": False, "relay2": True}, "emu")
print("swapped", pins())
try:
    ctl.on_config({"relays"}, {"relays": {"x": {"pin": 24}}, "interlocks": []})
except ValueError as e:
    print("vetoed", e)
print("kept", sorted(ctl.read()))
""")
    assert "boot (0, 0) oe 3" in out
    assert "relay1 (1, 0)" in out
    assert "refused interlock: relay1 and relay2 cannot both be on" in out
    assert "after (1, 0)" in out
    assert "swapped (0, 1)" in out
    assert "vetoed relays.x.pin: GPIO 24 is not allowed on this board" in out
    assert "kept ['relay1', 'relay2']" in out


def test_relays_image_serves_http_in_process_and_reports_free_heap():
    out = run_rp2("RELAYS", _SETUP + """
class Reader:  # the request's bytes, as the socket stream hands them to the HTTP server
    def __init__(self, data): self.data = data
    async def readinto(self, buf): return self._take(len(buf), buf)
    async def readexactly(self, n): return bytes(self._take(n, None))
    def _take(self, n, buf):
        n = min(n, len(self.data)); part = self.data[:n]; self.data = self.data[n:]
        if buf is None: return part
        buf[:n] = part; return n

class Writer:
    def __init__(self): self.data = b""
    async def awrite(self, b): self.data += bytes(b)
    async def aclose(self): pass
    def get_extra_info(self, what): return ("10.0.0.2", 40000)

token = auth.issue("op", "operator")

async def request(method, path, body=b""):
    raw = b"%s %s HTTP/1.1\\r\\nAuthorization: Bearer %s\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (
        method, path, token, len(body), body)
    w = Writer()
    await ctl.server.app.handle_request(Reader(raw), w)
    return w.data.split(b"\\r\\n", 1)[0], w.data.rsplit(b"\\r\\n", 1)[1]

async def main():
    await ctl.start()  # safe states, max on-time guard task, config/managers when given
    print("post", await request(b"POST", b"/gpio/relay2", b'{"state": "HIGH"}'), pins())
    print("get", await request(b"GET", b"/gpio"))
    print("conflict", (await request(b"POST", b"/gpio/relay1", b'{"state": "HIGH"}'))[0])
    # the longest path allowed is matched without overflowing the board's stack; longer: 414
    print("paths", (await request(b"GET", b"/gpio/" + b"r" * 58))[0],
          (await request(b"GET", b"/gpio/" + b"r" * 300))[0])
    for i in range(50):
        await request(b"GET", b"/gpio/relay1")
    gc.collect()
    print("free_started", gc.mem_free())
    for i in range(50):
        await request(b"GET", b"/gpio/relay1")
    gc.collect()
    print("free_after_100", gc.mem_free())
    ctl.stop_guard()

asyncio.run(main())
""")
    assert "post (b'HTTP/1.1 200 OK', b'{\"relay\": \"relay2\", \"state\": \"HIGH\"}') (0, 1)" in out
    assert "\"relay1\": \"LOW\"" in out and "\"relay2\": \"HIGH\"" in out
    assert "conflict b'HTTP/1.1 409 Conflict'" in out
    assert "paths b'HTTP/1.1 404 Not Found' b'HTTP/1.1 414 URI Too Long'" in out
    started = int(re.search(r"free_started (\d+)", out).group(1))
    after = int(re.search(r"free_after_100 (\d+)", out).group(1))
    print("RELAYS image in rp2040py: free heap %d bytes after start, %d after 100 more "
          "requests" % (started, after))
    assert started >= 120 * 1024, started
    assert after >= started - 2048, (started, after)  # no growth per request
