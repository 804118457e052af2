"""The SENSORS image in the emulated RP2040 (rp2040py, no network): ADC inputs set from
the host are what the SensorsController samples, and what `GET /sensors` reports through
the Microdot app over in-memory streams. Also the free heap once it all runs."""
import json
import re

import pytest

from harness.rp2_device import booted, run
from harness.scripts import device_script, shared_script, with_args

pytestmark = pytest.mark.rp2

_SETUP = "\n" + shared_script("memory_streams.py") + device_script(__file__, "sensors_setup_rp2.py")

_PHASE = device_script(__file__, "sensors_phase_rp2.py")


def volts(raw):
    return round(raw * 3.3 / 4096, 4)


def reported(out):
    assert "status b'HTTP/1.1 200 OK'" in out, out
    body = json.loads(re.findall(r"^body (.*)$", out, re.M)[-1])
    return {name: f["value"] for name, f in body["fields"].items()}


async def test_sensors_image_samples_emulated_adc_and_serves_it_in_process():
    async with booted("SENSORS") as dev:
        await run(dev, _SETUP)
        dev.mcu.adc.channel_values[:] = [100, 2482, 1000, 0, 876]
        out = await run(dev, with_args(_PHASE, first=True))
        assert reported(out) == {"volts": volts(2482), "level": volts(1000)}
        free = int(re.search(r"free_started (\d+)", out).group(1))
        # the host changes the inputs: the next samples follow them
        dev.mcu.adc.channel_values[1] = 3900
        dev.mcu.adc.channel_values[2] = 17
        out = await run(dev, with_args(_PHASE, first=False))
        assert reported(out) == {"volts": volts(3900), "level": volts(17)}
        tail = await run(dev, "ctl._halt()\nprint('check', ctl.samples, len(ctl._tasks))")
        assert re.search(r"check \d+ 0", tail), tail
    print("SENSORS image in rp2040py: free heap %d bytes after start (2 adc fields sampling)"
          % free)
    assert free >= 120 * 1024, free
