"""The MicroPython image behind the loader, in rp2040py: boot, stage through `_iotimage`, swap
RELAYS for SENSORS, trial, confirm. Needs the loader build:

    IOTLIB_LOADER=ON IOTLIB_BUILD=/tmp/b firmware/build.sh rp2
    IOTLIB_BUILD=/tmp/b .venv/bin/python -m pytest tests/test_ota_image_rp2.py -q -s
"""
import asyncio
import hashlib
import sys
import time

import pytest

from conftest import BUILD, ROOT, MicroPythonError

sys.path.insert(0, str(ROOT / "firmware"))
import pack_image as P  # noqa: E402

L = P.L
WD_SCRATCH0 = 0x40058000 + 0x0C


def _need_loader_build():
    loader = BUILD / "rp2" / "loader" / "iot_loader.bin"
    if not loader.exists():
        pytest.fail("%s is missing: build with `IOTLIB_LOADER=ON firmware/build.sh rp2`" % loader)
    return {"loader": loader.read_bytes(),
            "RELAYS": (BUILD / "rp2" / "RELAYS" / "firmware.bin").read_bytes(),
            "SENSORS": (BUILD / "rp2" / "SENSORS" / "firmware.bin").read_bytes()}


async def _run(device, code, timeout=120):
    out, err = await device.aexec(code, timeout=timeout)
    if err:
        raise MicroPythonError(err.decode(errors="replace") + "\n--- stdout\n" + out.decode())
    return out.decode().replace("\r\n", "\n")


async def _reset(device, code):
    """Run code that ends in machine.reset() and wait for the chip to reset."""
    fired = asyncio.Event()
    reset_chip = device.mcu.watchdog.on_watchdog_trigger

    def on_trigger():
        fired.set()
        reset_chip()

    device.mcu.watchdog.on_watchdog_trigger = on_trigger
    running = asyncio.wrap_future(device.exec_async(code, timeout=60))
    await asyncio.wait_for(fired.wait(), 60)
    running.cancel()
    device.mcu.watchdog.on_watchdog_trigger = reset_chip
    await asyncio.sleep(0.1)


def test_micropython_image_swap(tmp_path):
    from rp2040py.boards import BOARDS, resolve_firmware
    from rp2040py.device import MicroPythonDevice

    img = _need_loader_build()
    new = img["SENSORS"]
    flash = P.factory_flash(img["loader"], img["RELAYS"])
    # The download's end state: the image's bytes in the staging area, no header yet.
    flash[L["STAGE_OFFSET"]:L["STAGE_OFFSET"] + len(new)] = new
    uf2 = tmp_path / "device.uf2"
    uf2.write_bytes(P.uf2([(0, flash[:L["FS_OFFSET"]])]))
    last = L["APP_SIZE"] // L["FLASH_SECTOR"] - 1
    probe = 0x10000000 + L["STAGE_OFFSET"] + last * L["FLASH_SECTOR"]

    async def run():
        board = resolve_firmware(BOARDS["pico"], "micropython", str(uf2))
        async with MicroPythonDevice(board=board) as device:
            before = await _run(device, "import _iotimage, sys\n"
                                "print(_iotimage.boot_mode(), sys.implementation._build, _iotimage.APP_SIZE)")
            staged = await _run(device, (
                "import _iotimage, machine\n"
                "_iotimage.stage_write(%d, b'probe')\n"
                "print(bytes(machine.mem8[%d + i] for i in range(6)))\n"
                "print(_iotimage.stage_commit(%d, b'\\0' * 32, 'x'))\n"   # wrong hash: refused
                "t = __import__('time').ticks_ms()\n"
                "print(_iotimage.stage_commit(%d, bytes.fromhex('%s'), '1.1.0'))\n"
                "print('commit_ms', __import__('time').ticks_diff(__import__('time').ticks_ms(), t))\n"
            ) % (last, probe, len(new), len(new), hashlib.sha256(new).hexdigest()), timeout=300)
            t = time.monotonic()
            await _reset(device, "import machine; machine.reset()")
            trial = await _run(device, "import _iotimage, sys\n"
                               "print(_iotimage.boot_mode(), sys.implementation._build, _iotimage.trial_boots())",
                               timeout=300)
            swap_s = time.monotonic() - t
            await _reset(device, "import _iotimage, machine; _iotimage.confirm(); machine.reset()")
            after = await _run(device, "import _iotimage, sys\n"
                               "print(_iotimage.boot_mode(), sys.implementation._build)")
            return before, staged, trial, after, swap_s

    before, staged, trial, after, swap_s = asyncio.run(run())
    print("\nstage/commit:\n%s\nswap of %d bytes + boot: %.1f s in the emulator" % (staged, len(new), swap_s))
    assert before.split()[:2] == ["normal", "PICO_W_IOT-RELAYS"], before
    lines = staged.split("\n")
    assert lines[0] == "b'probe\\xff'" and lines[1] == "False" and lines[2] == "True", staged
    assert trial.split() == ["trial", "PICO_W_IOT-SENSORS", "1"], trial
    assert after.split() == ["normal", "PICO_W_IOT-SENSORS"], after
