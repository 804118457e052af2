"""The managers import, construct and start on the Wi-Fi RELAYS image in the emulator's plain
Pico board (no CYW43 chip there: the radio fails to come up, the network reports down and why,
everything else runs) and the free heap is printed."""
import re

import pytest

from harness.run import run_rp2
from harness.scripts import device_script

pytestmark = pytest.mark.rp2

# The image's frozen _boot.py (the rp2 port's) has mounted littlefs at / already.
START = "\n" + device_script(__file__, "managers_start_rp2.py")


def test_managers_start_on_relays_image():
    out = run_rp2("RELAYS", START)
    print(out)
    assert "link WlanLink False" in out
    # the RTC starts in 2021: tokens wait for the clock, then machine.RTC is set from "SNTP"
    assert "unsynced (False, 'clock_not_synced') 2021" in out
    assert "rtc 2026 (2026, 1, 1) True" in out
    assert "authorize (True, 'ok')" in out
    assert "audit (True, '1 lines')" in out
    assert "ready False metrics True" in out  # no radio, no config yet: not ready
    free = int(re.search(r"mem_free (\d+)", out).group(1))
    assert free > 60000, out
