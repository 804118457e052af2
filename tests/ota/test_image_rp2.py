"""The Wi-Fi MicroPython image behind the loader, in rp2040py (plain `pico` board: the loader
and the REPL need no radio):
  * the device's own Python (OTAUpdateManager) refuses an image the filesystem has no room for,
    then downloads a staged file into littlefs; the loader reads that MicroPython-written file
    and installs it (a small test application, so that the source and the download both fit);
  * a device of the old layout loses its files (the filesystem moved and is formatted).
The Wi-Fi SENSORS image swapped in, its trial boots, confirm and safe mode: test_image_wifi.py
(it shares that file's one recorded swap).

    firmware/build.sh rp2 && .venv/bin/python -m pytest tests/ota/test_image_rp2.py -q -s
"""
import asyncio
import hashlib
import json
import sys
import time

import pytest

from harness.rp2_device import flash_device, reset_with, run
from harness.run import BUILD, ROOT
from harness.scripts import device_script

sys.path.insert(0, str(ROOT / "firmware"))
import pack_image as P  # noqa: E402

pytestmark = pytest.mark.rp2

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


# The device's own Python path: OTAUpdateManager with the real stage. The artefact and its
# signed manifest sit in littlefs (a stand-in for the updates service: the radio is not
# emulated on this board); the stand-in HTTP client answers Range requests from that file
# into one preallocated 4 KB buffer, the way HttpClient reuses its body buffer.
_STAGE_VIA_PYTHON = "\n" + device_script(__file__, "stage_via_python_rp2.py")
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

    async def scenario():
        device = flash_device(tmp_path, flash)
        await device.astart(timeout=600)
        try:
            out = await run(device, _STAGE_VIA_PYTHON + _NO_ROOM, timeout=300)
            await reset_with(device, _STAGE_VIA_PYTHON + _OFFER, timeout=900)
            t = time.monotonic()
            while (device.mcu.watchdog.scratch_data[3] & 0xFFF00000) != 0xA9900000:
                assert time.monotonic() - t < 600, "testapp never settled"
                await asyncio.sleep(0.5)
            return out, device.mcu.watchdog.scratch_data[3], bytes(device.mcu.flash[0:P.FLASH_SIZE])
        finally:
            device.stop()

    out, settled, after = asyncio.run(scenario())
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

    async def scenario():
        device = flash_device(tmp_path, flash)
        await device.astart(timeout=600)
        try:
            return await run(device, _AFTER_BOOT, timeout=120)
        finally:
            device.stop()

    out = asyncio.run(scenario())
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

    async def scenario():
        device = flash_device(tmp_path, flash)
        await device.astart(timeout=600)
        try:
            return await run(device, "import os\nst = os.statvfs('/')\n"
                              "print(sorted(os.listdir('/')), st[0] * st[2])", timeout=120)
        finally:
            device.stop()

    out = asyncio.run(scenario())
    assert out.split("\n")[0] == "[] %d" % L["FS_SIZE"], out  # empty, and the new size
