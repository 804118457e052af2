"""The rp2040py MicroPython device driven from the host: boot an image, run code over its raw
REPL, wait for a reset; and a device booting a whole 2 MB flash (loader, application, littlefs)."""
import asyncio
import contextlib
import dataclasses
import sys

from rp2040py.boards import BOARDS, FlashLayout, resolve_firmware
from rp2040py.device import MicroPythonDevice
from rp2040py.peripherals.adc import RPADC

from harness.run import ROOT, MicroPythonError, uf2

sys.path.insert(0, str(ROOT / "firmware"))
import pack_image as P  # noqa: E402

L = P.L


def _set_ainsel(adc, channel):
    adc.cs = (adc.cs & ~(0x7 << 12)) | ((channel & 0x7) << 12)


def fix_adc_round_robin(mcu):
    """rp2040py 0.3.6 keeps two rp2040js bugs in the ADC round-robin: AINSEL is masked with
    12 instead of 7 (channels 1-3 become 0), and the advance from channel 4 wraps to 1,
    skipping 0. Datasheet behaviour (RP2040 4.9.2: after each conversion AINSEL moves to
    the next channel set in RROBIN) is restored here, so a burst is checked against the
    chip, not against the emulator's bug."""
    RPADC._active_channel = property(RPADC._active_channel.fget, _set_ainsel)
    mcu.adc.num_channels = 6  # 4 -> 5 (never in RROBIN) -> 0: the wrap lands on 0


@contextlib.asynccontextmanager
async def booted(variant="RELAYS"):
    board = resolve_firmware(BOARDS["pico"], "micropython", str(uf2(variant)))
    async with MicroPythonDevice(board=board) as device:
        fix_adc_round_robin(device.mcu)
        yield device


async def run(device, code, timeout=120):
    """Run code on the device; return stdout (str), raise with the traceback on error."""
    out, err = await device.aexec(code, timeout=timeout)
    if err:
        raise MicroPythonError(err.decode(errors="replace") + "\n--- stdout\n" + out.decode())
    return out.decode().replace("\r\n", "\n")


def flash_device(tmp_path, flash):
    """A MicroPython device booting this 2 MB flash (loader, application, our littlefs)."""
    image, fs = tmp_path / "device.uf2", tmp_path / "fs.img"
    image.write_bytes(P.uf2([(0, flash[:L["FS_OFFSET"]])]))
    fs.write_bytes(bytes(flash[L["FS_OFFSET"]:]))
    board = resolve_firmware(BOARDS["pico"], "micropython", str(image))
    board = dataclasses.replace(board, layout=FlashLayout(
        fs_start=L["FS_OFFSET"], fs_blockcount=L["FS_SIZE"] // L["FLASH_SECTOR"],
        fs_blocksize=L["FLASH_SECTOR"], prog_start=None))
    return MicroPythonDevice(board=board, filesystem=str(fs))


async def reset_with(device, code, timeout=60):
    """Run code that ends in machine.reset() and wait for the chip to reset. Code that
    finishes without resetting fails with its output."""
    fired = asyncio.Event()
    reset_chip = device.mcu.watchdog.on_watchdog_trigger

    def on_trigger():
        fired.set()
        reset_chip()

    device.mcu.watchdog.on_watchdog_trigger = on_trigger
    running = asyncio.wrap_future(device.exec_async(code, timeout=timeout))
    waiting = asyncio.ensure_future(fired.wait())
    done, _ = await asyncio.wait([running, waiting], timeout=timeout,
                                 return_when=asyncio.FIRST_COMPLETED)
    device.mcu.watchdog.on_watchdog_trigger = reset_chip
    if waiting not in done:
        waiting.cancel()
        out, err = running.result() if running in done else (b"", b"timeout")
        raise MicroPythonError("no reset:\n" + (out + err).decode(errors="replace"))
    running.cancel()
    await asyncio.sleep(0.1)
