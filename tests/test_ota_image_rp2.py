"""The MicroPython image behind the loader, in rp2040py: boot, stage through `_iotimage`, swap
RELAYS for SENSORS, trial, confirm. Needs the loader build:

    IOTLIB_LOADER=ON IOTLIB_BUILD=/tmp/b firmware/build.sh rp2
    IOTLIB_BUILD=/tmp/b .venv/bin/python -m pytest tests/test_ota_image_rp2.py -q -s
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
        pytest.fail("%s is missing: build with `IOTLIB_LOADER=ON firmware/build.sh rp2`" % loader)
    return {"loader": loader.read_bytes(),
            "RELAYS": (BUILD / "rp2" / "RELAYS" / "firmware.bin").read_bytes(),
            "SENSORS": (BUILD / "rp2" / "SENSORS" / "firmware.bin").read_bytes()}


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
                "b = bytearray(16)\n"  # stage_read: what a resumed download re-hashes
                "print(_iotimage.stage_read(%d, memoryview(b)[:8]), bytes(b[:8]),"
                " _iotimage.stage_read(0, b), bytes(b).hex())\n"
                "print(_iotimage.stage_commit(%d, b'\\0' * 32, 'x'))\n"   # wrong hash: refused
                "t = __import__('time').ticks_ms()\n"
                "print(_iotimage.stage_commit(%d, bytes.fromhex('%s'), '1.1.0'))\n"
                "print('commit_ms', __import__('time').ticks_diff(__import__('time').ticks_ms(), t))\n"
            ) % (last, probe, last, len(new), len(new), hashlib.sha256(new).hexdigest()), timeout=300)
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
    assert lines[0] == "b'probe\\xff'" and lines[2] == "False" and lines[3] == "True", staged
    assert lines[1] == "8 b'probe\\xff\\xff\\xff' 16 " + new[:16].hex(), staged
    assert trial.split() == ["trial", "PICO_W_IOT-SENSORS", "1"], trial
    assert after.split() == ["normal", "PICO_W_IOT-SENSORS"], after


# The device's own Python path: OTAUpdateManager with the real `_iotimage` stage. The
# artefact and its signed manifest sit in littlefs (a stand-in for the updates service: this
# image has no network stack); the fake HTTP client answers Range requests from that file
# into one preallocated 4 KB buffer, the way HttpClient reuses its body buffer.
_STAGE_VIA_PYTHON = """
import json, machine
from iotlib.bundle_store import BundleStore
from iotlib.image_stage import open_stage
from iotlib.ota_manager import OTAUpdateManager

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

m = json.load(open("/sensors.image.json"))
stage = open_stage()
print("stage", type(stage).__name__, stage.boot_mode(), stage.APP_SIZE)
mgr = OTAUpdateManager(FileHttp("/sensors.image"), BundleStore("/ota"), "emu-1", "http://fleet/api",
                       "1.0.0", image=stage, reset=machine.reset)
import asyncio
print(asyncio.run(mgr.offer(m)))
"""

_TRIAL = """
import json, machine, sys
from iotlib.bundle_store import BundleStore
from iotlib.image_stage import open_stage
from iotlib.ota_manager import OTAUpdateManager
from iotlib.health import Health
health = Health()
health.add_check("app", lambda: (True, "ok"))
mgr = OTAUpdateManager(None, BundleStore("/ota"), "emu-1", "http://fleet/api", "1.0.0",
                       image=open_stage(), health=health, reset=machine.reset)
bs = mgr.boot_state()
print("boot", bs["image_mode"], bs["image_trial_boots"], bs["trial"], sys.implementation._build)
print(mgr.commit())
"""

_SAFE = """
import gc, json, os, sys, machine
machine.mem32[0x40058000 + 0x0C + 4] = 0x53414645   # scratch 1 = SAFE, as the loader leaves it
with open("/device.json", "w") as f:
    json.dump({"device_id": "emu-1", "device_key": "k" * 64, "api_key": "a" * 64,
               "tenant": "acme", "namespace": "plant1", "port": 8080,
               "service_discovery_url": "http://10.9.9.9/api"}, f)
import iot_boot
device = iot_boot.prepare()
device.report_safe_mode()
a = device.alarms._find("safe_mode", "ota")
print("safe", type(device.controller).__name__, device.safe_mode,
      "sensors_controller" in sys.modules, a["severity"] if a else None)
print("managers", sorted(type(m).__name__ for m in device.controller.managers),
      device.controller.config is None)
print("state", device.ota.boot_state()["image_mode"])
os.remove("/device.json")
machine.mem32[0x40058000 + 0x0C + 4] = 0x4e4f524d
"""


def test_image_staged_by_ota_manager_swaps_trials_confirms_and_safe_mode(tmp_path):
    import dataclasses
    from rp2040py.boards import BOARDS, FlashLayout, resolve_firmware
    from rp2040py.cli.mklittlefs import build_littlefs_image
    from rp2040py.device import MicroPythonDevice

    img = _need_loader_build()
    new = img["SENSORS"]
    manifest = P.sign(new, str(ROOT / "tools" / "iot-sign" / "dev-key" / "private.pem"), "9.0.0", None)
    (tmp_path / "sensors.image").write_bytes(new)
    (tmp_path / "sensors.image.json").write_text(json.dumps(dict(manifest, url="/sensors.image")))
    fs = tmp_path / "fs.img"
    blocks = (P.FLASH_SIZE - L["FS_OFFSET"]) // L["FLASH_SECTOR"]  # our littlefs: 848 KB at 0x12C000
    build_littlefs_image(fs, [tmp_path / "sensors.image", tmp_path / "sensors.image.json"],
                         block_count=blocks)
    flash = P.factory_flash(img["loader"], img["RELAYS"])
    uf2 = tmp_path / "device.uf2"
    uf2.write_bytes(P.uf2([(0, flash[:L["FS_OFFSET"]])]))

    async def run():
        board = resolve_firmware(BOARDS["pico"], "micropython", str(uf2))
        board = dataclasses.replace(board, layout=FlashLayout(
            fs_start=L["FS_OFFSET"], fs_blockcount=blocks, fs_blocksize=L["FLASH_SECTOR"], prog_start=None))
        async with MicroPythonDevice(board=board, filesystem=str(fs)) as device:
            out = {}
            t = time.monotonic()
            await _reset(device, _STAGE_VIA_PYTHON, timeout=240)
            out["stage_s"] = time.monotonic() - t
            t = time.monotonic()
            out["trial"] = await _run(device, "import _iotimage, sys\n"
                                      "print(_iotimage.boot_mode(), sys.implementation._build)", timeout=300)
            out["swap_s"] = time.monotonic() - t
            await _reset(device, _TRIAL)
            out["after"] = await _run(device, _TRIAL.replace("print(mgr.commit())", ""))
            out["safe"] = await _run(device, _SAFE, timeout=120)
            return out

    out = asyncio.run(run())
    print("\nOTAUpdateManager staging of %d bytes (verify + download + stage_commit) + reset: %.1f s,"
          " swap + boot: %.1f s (emulator wall time)\n%s" % (len(new), out["stage_s"], out["swap_s"], out))
    assert out["trial"].split() == ["trial", "PICO_W_IOT-SENSORS"], out
    assert out["after"].split("\n")[0].split() == ["boot", "normal", "0", "False", "PICO_W_IOT-SENSORS"], out
    lines = out["safe"].split("\n")
    assert "SAFE MODE" in out["safe"], out["safe"]
    assert "safe SafeModeController True False critical" in lines, out["safe"]
    assert "state safe" in lines, out["safe"]
    managers = [l for l in lines if l.startswith("managers")][0]
    for name in ("NetworkManager", "FleetLink", "AlarmManager", "AfterRegistration"):
        assert name in managers, managers
    assert managers.endswith("True"), managers  # no config poller

