"""The Wi-Fi MicroPython image behind the loader, in rp2040py (plain `pico` board: the loader
and the REPL need no radio):
  * the device's own Python (OTAUpdateManager) refuses an image the filesystem has no room for,
    then downloads a staged file into littlefs; the loader reads that MicroPython-written file
    and installs it (a small test application, so that the source and the download both fit);
  * a device of the old layout loses its files (the filesystem moved and is formatted).
The Wi-Fi SENSORS image swapped in, its trial boots, confirm and safe mode: test_ota_image_wifi.py
(it shares that file's one recorded swap).

    firmware/build.sh rp2 && .venv/bin/python -m pytest tests/test_ota_image_rp2.py -q -s
"""
import asyncio
import hashlib
import json
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
        pytest.fail("%s is missing: build with `firmware/build.sh rp2`" % loader)
    return {"loader": loader.read_bytes(),
            "testapp_v2": (BUILD / "rp2" / "loader" / "testapp_v2.bin").read_bytes(),
            "RELAYS": (BUILD / "rp2" / "RELAYS" / "firmware.bin").read_bytes(),
            "SENSORS": (BUILD / "rp2" / "SENSORS" / "firmware.bin").read_bytes()}


def _device(tmp_path, flash):
    """A MicroPython device booting this 2 MB flash (loader, application, our littlefs)."""
    import dataclasses
    from rp2040py.boards import BOARDS, FlashLayout, resolve_firmware
    from rp2040py.device import MicroPythonDevice
    uf2, fs = tmp_path / "device.uf2", tmp_path / "fs.img"
    uf2.write_bytes(P.uf2([(0, flash[:L["FS_OFFSET"]])]))
    fs.write_bytes(bytes(flash[L["FS_OFFSET"]:]))
    board = resolve_firmware(BOARDS["pico"], "micropython", str(uf2))
    board = dataclasses.replace(board, layout=FlashLayout(
        fs_start=L["FS_OFFSET"], fs_blockcount=L["FS_SIZE"] // L["FLASH_SECTOR"],
        fs_blocksize=L["FLASH_SECTOR"], prog_start=None))
    return MicroPythonDevice(board=board, filesystem=str(fs))


async def _run(device, code, timeout=120):
    out, err = await device.aexec(code, timeout=timeout)
    if err:
        raise MicroPythonError(err.decode(errors="replace") + "\n--- stdout\n" + out.decode())
    return out.decode().replace("\r\n", "\n")


async def _reset(device, code, timeout=60):
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


# The device's own Python path: OTAUpdateManager with the real stage. The artefact and its
# signed manifest sit in littlefs (a stand-in for the updates service: the radio is not
# emulated on this board); the stand-in HTTP client answers Range requests from that file
# into one preallocated 4 KB buffer, the way HttpClient reuses its body buffer.
_STAGE_VIA_PYTHON = """
import json, machine, os
from iotlib.ota.bundle import BundleStore
from iotlib import hal
from iotlib.ota.manager import OTAUpdateManager

class Response:
    def __init__(self, status, body):
        self.status, self.body = status, body

class FileHttp:
    def __init__(self, path):
        self.f = open(path, "rb")
        self.buf = bytearray(4096)
    async def request(self, method, url, headers=None):
        a, b = [int(x) for x in headers["Range"][6:].split("-")]
        self.f.seek(a)
        n = self.f.readinto(memoryview(self.buf)[:b + 1 - a])
        return Response(206, memoryview(self.buf)[:n])

stage = hal.load().staging()
mgr = OTAUpdateManager("http://fleet/api", device_id="emu-1", http=FileHttp("/v2.image"),
                       store=BundleStore("ota"), factory_version="1.0.0", image=stage, reset=machine.reset,
                       alarm=lambda *a: print("ALARM", a[0], a[2]))
import asyncio
"""
_NO_ROOM = """
print("stage", stage.boot_mode(), stage.verdict(), stage.APP_SIZE, stage.path)
print("big", asyncio.run(mgr.offer(json.load(open("/big.json")))))
os.remove("/filler")
"""
_OFFER = """
print(asyncio.run(mgr.offer(json.load(open("/v2.image.json")))))
"""


def test_ota_manager_stages_a_file_the_loader_installs(tmp_path):
    """No room: refused before a byte is downloaded (alarm). Then MicroPython writes the staged
    file into its littlefs (download part, renamed whole) and resets; the loader finds it,
    inflates it, installs it, and the new application runs (it confirms its trial itself)."""
    img = _need_loader_build()
    key = str(ROOT / "tools" / "iot-sign" / "dev-key" / "private.pem")
    v2, m = P.sign(img["testapp_v2"], key, "9.0.0", None)
    big, m_big = P.sign(img["SENSORS"], key, "9.1.0", None)  # signed, but there is no room for it
    flash = P.factory_flash(img["loader"], img["RELAYS"])
    P.fs_update(flash, {"v2.image": v2, "v2.image.json": json.dumps(dict(m, url="/v2.image")).encode(),
                        "big.json": json.dumps(dict(m_big, url="/big.image")).encode(),
                        "filler": bytes(L["FS_SIZE"] - len(big))})  # leaves less than the big file

    async def run():
        device = _device(tmp_path, flash)
        await device.astart(timeout=600)
        try:
            out = await _run(device, _STAGE_VIA_PYTHON + _NO_ROOM, timeout=300)
            await _reset(device, _STAGE_VIA_PYTHON + _OFFER, timeout=900)
            t = time.monotonic()
            while (device.mcu.watchdog.scratch_data[3] & 0xFFF00000) != 0xA9900000:
                assert time.monotonic() - t < 600, "testapp never settled"
                await asyncio.sleep(0.5)
            return out, device.mcu.watchdog.scratch_data[3], bytes(device.mcu.flash[0:P.FLASH_SIZE])
        finally:
            device.stop()

    out, settled, after = asyncio.run(run())
    print("\n" + out)
    lines = out.split("\n")
    assert lines[0] == "stage normal none %d ota/image.z" % L["APP_SIZE"], out
    assert lines[1].startswith("ALARM ota_refused no_space") and "'no_space'" in lines[2], out
    assert settled == 0xA9900000 | (ord("N") << 8) | 2  # testapp v2, confirmed, normal
    assert after[L["APP_OFFSET"]:L["APP_OFFSET"] + len(img["testapp_v2"])] == img["testapp_v2"]
    assert P.fs_read(after, "ota/image.z") == v2  # the file MicroPython wrote, read by the loader
    assert P.fs_read(after, "ota/download.part") is None


_AFTER_BOOT = """
import machine
from iotlib.storage import exists
from iotlib.ota.bundle import BundleStore
from iotlib import hal
from iotlib.ota.manager import OTAUpdateManager
mgr = OTAUpdateManager("http://fleet/api", device_id="emu-1", store=BundleStore("ota"),
                       factory_version="1.0.0", image=hal.load().staging(), reset=machine.reset,
                       alarm=lambda *a: print("ALARM", a[0], a[2]))
print("before", exists("ota/image.z"), mgr.image_mode())
print("verdict", mgr.after_boot(), exists("ota/image.z"))
"""


def test_refused_staged_file_is_deleted_and_alarmed(tmp_path):
    """A staged file the loader refuses (here cut short: its length is not the header's) boots
    the old image untouched; the image learns why, deletes the file and raises the alarm."""
    img = _need_loader_build()
    flash = P.factory_flash(img["loader"], img["RELAYS"])
    data = P.stage_file(img["testapp_v2"], "9.0.0")
    P.stage(flash, None, data=data[:-100])

    async def run():
        device = _device(tmp_path, flash)
        await device.astart(timeout=600)
        try:
            return await _run(device, _AFTER_BOOT, timeout=120)
        finally:
            device.stop()

    out = asyncio.run(run())
    lines = out.split("\n")
    assert lines[0] == "before True normal", out
    assert lines[1].startswith("ALARM ota_refused loader_truncated"), out
    assert lines[2] == "verdict truncated False", out


def test_old_layout_files_are_not_found_and_the_filesystem_is_formatted(tmp_path):
    """A device of the old layout (848 KB littlefs at 0x12C000 holding /device.json) flashed
    with today's factory UF2: the filesystem starts at IOT_FS_OFFSET now, littlefs finds no
    superblock there and the port's _boot.py formats a new one. The files are gone, as
    docs/ota.md says: such a device is reflashed and provisioned again."""
    from littlefs import LittleFS, UserContext
    img = _need_loader_build()
    old_offset, old_size = 0x12C000, 848 * 1024
    ctx = UserContext(buffsize=old_size)
    old = LittleFS(context=ctx, block_size=4096, block_count=old_size // 4096, prog_size=256,
                   disk_version=0x00020000)
    with old.open("device.json", "w") as f:
        f.write('{"device_id": "old-1"}')
    old.unmount()
    flash = P.factory_flash(img["loader"], img["RELAYS"])
    flash[old_offset:] = ctx.buffer

    async def run():
        device = _device(tmp_path, flash)
        await device.astart(timeout=600)
        try:
            return await _run(device, "import os\nst = os.statvfs('/')\n"
                              "print(sorted(os.listdir('/')), st[0] * st[2])", timeout=120)
        finally:
            device.stop()

    out = asyncio.run(run())
    assert out.split("\n")[0] == "[] %d" % L["FS_SIZE"], out  # empty, and the new size
