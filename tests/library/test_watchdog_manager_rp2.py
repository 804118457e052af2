"""In the emulated RP2040 (rp2040py, which emulates the watchdog and flash): a loop that stops
checking in makes WatchdogManager stop feeding machine.WDT (the RELAYS image's hal is
iotlib.hal.rp2), the watchdog resets the chip, and the hal's reset_cause() and the boot counter
on the littlefs filesystem say so after the reboot.

The emulator runs about 10-15x slower than real time on a loaded 2-core machine, hence the
short emulated intervals and the long host-side timeouts."""
import asyncio

import pytest

from harness.run import uf2
from harness.scripts import device_script

pytestmark = pytest.mark.rp2

# The image's frozen _boot.py (the rp2 port's) mounts littlefs at / on every boot, the
# one after the watchdog reset too.
STALL = "\n" + device_script(__file__, "watchdog_stall_rp2.py")

AFTER = """
import machine
from iotlib.storage import Storage
from iotlib.boot_counter import BootCounter
store = Storage("/fleetmgr")
print("STAGE", store.read_json("stage.json"))
print("HW", machine.reset_cause() == machine.WDT_RESET)
from iotlib import hal
print("HAL", hal.load().__name__, hal.load().reset_cause())
boot = BootCounter(store, hal=hal.load())
boot.record_boot()
r = boot.report()
print("BOOT", r["boots"], r["reset_cause"], r["wdt_resets"], r["unconfirmed"], boot.clean)
"""


def test_stalled_loop_is_reset_by_the_rp2040_watchdog_and_counted():
    from rp2040py.boards import BOARDS, resolve_firmware
    from rp2040py.device import MicroPythonDevice

    image = uf2("RELAYS")    # the non-wireless image CI boots; a local path: nothing is fetched

    async def run():
        board = resolve_firmware(BOARDS["pico"], "micropython", str(image))
        async with MicroPythonDevice(board=board) as device:
            fired = asyncio.Event()
            reset_chip = device.mcu.watchdog.on_watchdog_trigger

            def on_trigger():               # the emulated watchdog resets the chip
                fired.set()
                reset_chip()

            device.mcu.watchdog.on_watchdog_trigger = on_trigger
            # never completes on its own: the watchdog resets the chip mid-exec
            running = asyncio.wrap_future(device.exec_async(STALL, timeout=90))
            waiter = asyncio.ensure_future(fired.wait())
            await asyncio.wait({running, waiter}, timeout=90, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                waiter.cancel()
                out, err = running.result()
                pytest.fail("the stalled script finished without a reset:\n%s%s"
                            % (out.decode(), err.decode()))
            assert fired.is_set(), "no watchdog reset within 90 s"
            running.cancel()                # frees the REPL channel for the next exec
            await asyncio.sleep(0.1)
            out, err = await device.aexec(AFTER, timeout=60)
            return out.decode(), err.decode()

    out, err = asyncio.run(run())
    assert not err, err
    assert "STAGE {'stage': 'stalled', 'boot': 1}" in out, out
    assert "HW True" in out, out
    assert "HAL iotlib.hal.rp2 wdt" in out, out  # the image chose the chip's hal, which says why
    assert "BOOT 2 wdt 1 2 False" in out, out
    assert "SURVIVED" not in out
