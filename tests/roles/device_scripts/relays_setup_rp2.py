# A RelaysController on the RELAYS image's pins in rp2040py; run by tests/roles/test_relays_rp2.py.
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
