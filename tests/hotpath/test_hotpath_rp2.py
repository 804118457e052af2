"""The hot path on the emulated RP2040 (rp2040py), over the real-register backend:
GPIO state and ADC inputs are read and set on the emulated chip, from the host."""
import ast

import pytest

from harness.rp2_device import booted, run
from harness.run import MicroPythonError
from harness.scripts import device_script

pytestmark = pytest.mark.rp2

PINS = {"r0": 2, "r1": 3, "r2": 4, "r3": 5, "r4": 6, "r5": 7, "r6": 8, "r7": 9}


async def last_literal(device, code):
    return ast.literal_eval((await run(device, code)).strip().splitlines()[-1])


async def test_backend_is_the_chip():
    async with booted() as dev:
        assert await last_literal(dev, "import _iotlib\nprint(repr(_iotlib.build_info()['backend']))") \
            == "rp2040"


async def test_batch_write_changes_requested_pins_only():
    async with booted() as dev:
        sio = dev.mcu.sio
        # Pins outside the bank, driven by plain machine.Pin, must keep their level.
        await run(dev, "from machine import Pin\n"
                       "others = [Pin(10, Pin.OUT, value=1), Pin(11, Pin.OUT, value=0)]\n"
                       "from iotlib.relay_bank import RelayBank\n"
                       "bank = RelayBank(%r, active_low=('r7',), interlocks=(('r0', 'r1'),))" % PINS)
        before = sio.gpio_value
        assert before & (1 << 9) and not before & 0b0111111100  # all OFF; r7 is active-low
        await run(dev, "bank.write({'r0': True, 'r2': True, 'r5': True, 'r7': True})")
        after = sio.gpio_value
        assert after ^ before == (1 << 2) | (1 << 4) | (1 << 7) | (1 << 9)
        assert after & (1 << 10) and not after & (1 << 11)
        # The emulated pins themselves, not just the register.
        assert [dev.mcu.gpio[g].output_value for g in (2, 3, 4, 7, 9)] == [True, False, True, True, False]
        assert dev.mcu.gpio[2].output_enable
        state = await last_literal(dev, "print(sorted(bank.read().items()))")
        assert dict(state) == {"r0": True, "r1": False, "r2": True, "r3": False, "r4": False,
                               "r5": True, "r6": False, "r7": True}
        # The interlock refuses on the device too, and the register does not move.
        err = await last_literal(dev, "try:\n    bank.write({'r1': True, 'r3': True})\n"
                                      "except ValueError as e:\n    print(repr(str(e)))")
        assert err == "interlock: r0 and r1 cannot both be on"
        assert sio.gpio_value == after


@pytest.mark.parametrize("pin", [23, 24, 25, 29])
async def test_bad_pin_is_refused_on_the_device(pin):
    async with booted() as dev:
        out = await last_literal(dev, "from iotlib.relay_bank import RelayBank\n"
                                      "r = []\nfor native in (True, False):\n"
                                      "    try:\n        RelayBank({'x': %d}, native=native)\n"
                                      "        r.append(None)\n"
                                      "    except ValueError as e:\n        r.append(str(e))\n"
                                      "print(r)" % pin)
        assert out == ["pin %d not allowed" % pin] * 2


async def test_adc_values_set_in_the_emulator_come_back_from_a_burst():
    async with booted() as dev:
        dev.mcu.adc.channel_values[:] = [1111, 2222, 3333, 444, 876]
        single = {}
        for ch in (0, 1, 2):
            single[ch] = await last_literal(dev, "from array import array\n"
                                                 "from iotlib.adc_sampler import AdcSampler\n"
                                                 "buf = array('H', bytes(8))\n"
                                                 "print(AdcSampler().burst((%d,), buf))" % ch)
        assert single[0] == (4, [(1111, 1111, 1111.0)])
        assert single[1] == (4, [(2222, 2222, 2222.0)])
        assert single[2] == (4, [(3333, 3333, 3333.0)])
        # Round-robin over GPIO channels and the temperature sensor, interleaved.
        n, stats, buf = await last_literal(dev, "buf = array('H', bytes(20))\n"
                                               "n, st = AdcSampler().burst((0, 2, 4), buf)\n"
                                               "print((n, st, list(buf)))")
        assert n == 9 and buf == [1111, 3333, 876] * 3 + [0]
        assert stats == [(1111, 1111, 1111.0), (3333, 3333, 3333.0), (876, 876, 876.0)]
        # The fallback reads the same emulated inputs.
        py = await last_literal(dev, "print(AdcSampler(native=False).burst((1, 2), "
                                     "array('H', bytes(8))))")
        assert py == (4, [(2222, 2222, 2222.0), (3333, 3333, 3333.0)])


async def test_temperature_and_fallback_agree_on_the_device():
    async with booted() as dev:
        raw = round(0.706 / 3.3 * 4096)
        dev.mcu.adc.channel_values[4] = raw
        c_temp, py_temp = await last_literal(dev, "from iotlib.adc_sampler import AdcSampler\n"
                                                  "print((AdcSampler().read_temperature_c(), "
                                                  "AdcSampler(native=False).read_temperature_c()))")
        assert abs(c_temp - 27) < 0.5 and abs(py_temp - c_temp) < 0.01


async def test_sim_hooks_say_simulation_only_on_the_chip():
    async with booted() as dev:
        out = await last_literal(dev, "import _iotlib\nfrom array import array\nr = []\n"
                                      "for f, a in ((_iotlib.sim_gpio, ()), (_iotlib.sim_adc_set, (0, 1)),"
                                      " (_iotlib.sim_adc_feed, (0, array('H', [1])))):\n"
                                      "    try:\n        f(*a)\n    except OSError as e:\n"
                                      "        r.append(str(e))\nprint(r)")
        assert out == ["simulation only"] * 3


async def test_json_framing_on_the_device_is_byte_identical_and_allocation_free():
    async with booted() as dev:
        c_line, py_line, per_line = await last_literal(dev, """
import gc
from iotlib.jsonlog import frame_into, py_frame_into
f = {"token": "abc", "relay": "pump", "on": True, "t": 21.5, "u": "é\\n"}
a = bytearray(200); b = bytearray(200)
na = frame_into(a, 1700000000, "info", "switched", f, ("token",))
nb = py_frame_into(b, 1700000000, "info", "switched", f, ("token",))
def used(n):
    gc.collect(); m = gc.mem_alloc()
    for _ in range(n):
        frame_into(a, 1700000000, "info", "switched", f, ("token",))
    return gc.mem_alloc() - m
print((bytes(a[:na]), bytes(b[:nb]), (used(120) - used(20)) / 100))
""")
        assert c_line == py_line and per_line == 0


async def test_logger_on_the_device_matches_the_fallback_and_allocates_nothing_per_line():
    # The ring path on the chip: a line costs no heap (the clock's int is read once per
    # 250 ms, the record goes straight into the ring), and the C and Python rings frame the
    # same bytes, nested and masked fields included.
    async with booted() as dev:
        per_line, same = await last_literal(dev, "\n" + device_script(__file__, "logger_matches_fallback_rp2.py"))
        assert per_line == 0 and same


async def test_a_full_ring_goes_to_flash_without_a_sync_and_flush_makes_it_durable():
    # littlefs shows a file's size as of its last sync. The full ring is appended for the
    # caller without a sync (a sync makes the next append copy the file's last block); the
    # background flush (every flush_ms) and stop() sync it, and rotation closes the file.
    async with booted() as dev:
        sizes = await last_literal(dev, "\n" + device_script(__file__, "logger_full_ring_to_flash_rp2.py"))
        spilled, before, after, rotated, live = sizes
        assert spilled > 0 and before == 0  # written out, not yet synced
        assert after > spilled  # the flush wrote the ring's rest and synced all of it
        assert 4096 - 512 < rotated <= 4096 and live == 0  # the rotated file is whole


async def test_device_errors_reach_the_test():
    async with booted() as dev:
        with pytest.raises(MicroPythonError):
            await run(dev, "import _iotlib\n_iotlib.adc_burst((0,), bytearray(4), 1000)")
