"""Power cuts during the swap of the real Wi-Fi image, in rp2040py (firmware/loader/emu.py).

The factory flash holds the loader and the Wi-Fi RELAYS image; the Wi-Fi SENSORS image is
staged as the loader's compressed file in littlefs (as OTAUpdateManager leaves it). One swap is
recorded (every flash erase and page program), then the flash as it is after the k-th
operation is powered on again: the loader must resume and jump into the whole SENSORS image
(trial mode). The boot stops where the loader jumps into the application (the plain `pico`
board: the loader needs no radio). Every fourth point is cut a second time during its resumed
copy. test_ota_image.py does the same on a small test application at many more points.
Then MicroPython itself boots the swapped image: the staged file is deleted after the loader's
"installed", trial boots are counted, commit() confirms, and safe mode builds its device.

    firmware/build.sh rp2 && .venv/bin/python -m pytest tests/test_ota_image_wifi.py -q -s

Each power-on after a cut inflates the whole 600 KB stream again (the loader keeps no inflater
state) and hashes the region: about 360 M emulated cycles, one to three minutes of emulator time.
OTA_IMAGE_WIFI_CUTS=<n> tries n points (default 2, CI's share of its 25 minutes: the copy's
first journal record, and a torn page program mid-copy cut again during its resume; then the
trial boot's record, a torn erase, the last records, random ones); OTA_IMAGE_WIFI_CUTS=all tries
every operation (about 3,800: days of emulator time).
"""
import asyncio
import os
import random
import sys
import time

import pytest

from conftest import BUILD, ROOT
from test_ota_image_rp2 import _device, _reset, _run

sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "firmware" / "loader"))
import emu  # noqa: E402
import pack_image as P  # noqa: E402

L = P.L
CPU_HZ = 125_000_000  # the loader runs at the SDK's default clock


def _images():
    out = {}
    for name, path in (("loader", BUILD / "rp2" / "loader" / "iot_loader.bin"),
                       ("RELAYS", BUILD / "rp2" / "RELAYS" / "firmware.bin"),
                       ("SENSORS", BUILD / "rp2" / "SENSORS" / "firmware.bin")):
        if not path.exists():
            pytest.fail("%s is missing: build the Wi-Fi images with `firmware/build.sh rp2`" % path)
        out[name] = path.read_bytes()
    return out


def _boot(flash, cut_after=None, record=False, torn=False):
    d = emu.Device(flash, cut_after=cut_after, record=record, torn=torn)
    return d.run(timeout_s=1800, until_app=True, app_offset=L["APP_OFFSET"])


def _whole_new_image(d, image):
    """The loader jumped into the new image, whole, on its first trial boot."""
    assert d.app_started, ("no jump into the application", hex(d.scratch(L["SCRATCH_BOOTMODE"])))
    assert d.scratch(L["SCRATCH_BOOTMODE"]) == L["BOOT_TRIAL"], hex(d.scratch(L["SCRATCH_BOOTMODE"]))
    flash = d.flash()
    assert flash[L["APP_OFFSET"]:L["APP_OFFSET"] + len(image)] == image


def wifi_swap_start(img):
    """The flash before the swap: RELAYS in the factory flash, the Wi-Fi SENSORS image staged
    as version 9.0.0; (flash, the staged file's bytes)."""
    start = P.factory_flash(img["loader"], img["RELAYS"])
    return start, P.stage(start, img["SENSORS"], "9.0.0")


@pytest.fixture(scope="module")
def swap():
    img = _images()
    start, staged = wifi_swap_start(img)
    t = time.monotonic()
    base = _boot(start, record=True)
    wall = time.monotonic() - t
    _whole_new_image(base, img["SENSORS"])
    assert (base.scratch(L["SCRATCH_INFO"]) >> 8) == L["VERDICT_INSTALLED"]
    return {"start": start, "ops": base.ops, "image": img["SENSORS"], "staged": staged,
            "wall": wall, "cycles": base.cycles, "relays": img["RELAYS"], "after": base.flash()}


def test_wifi_image_swap(swap):
    """The Wi-Fi image is what is swapped (radio and all), and how long the swap takes."""
    image = swap["image"]
    assert b"cyw43" in image or b"CYW43" in image, "not the Wi-Fi build"
    assert L["APP_SIZE"] - len(swap["relays"]) >= 64 * 1024 and L["APP_SIZE"] - len(image) >= 64 * 1024
    print("\nWi-Fi SENSORS image %d bytes, staged file %d bytes (%.0f%%); swap: %d flash operations, "
          "%.1f s of device time (%.0f M cycles at 125 MHz), %.0f s emulator wall time"
          % (len(image), len(swap["staged"]), 100.0 * len(swap["staged"]) / len(image), len(swap["ops"]),
             swap["cycles"] / CPU_HZ, swap["cycles"] / 1e6, swap["wall"]))


def _points(ops, want, rng):
    """Representative cut points: the journal's first writes (copy starts), a torn page program
    and a torn erase in the middle of the copy, the last sector's journal record, DONE and the
    trial boot's record; then random ones up to `want`."""
    n = len(ops)
    journal = [i + 1 for i, (_, a, _) in enumerate(ops) if L["JOURNAL_OFFSET"] <= a < L["APP_OFFSET"]]
    erases = [i + 1 for i, (op, a, _) in enumerate(ops) if op == emu.OP_ERASE and a >= L["APP_OFFSET"]]
    programs = [i + 1 for i, (op, a, _) in enumerate(ops) if op == emu.OP_PROGRAM and a >= L["APP_OFFSET"]]
    fixed = [(journal[1], False), (programs[len(programs) // 2], True), (n, False),
             (erases[len(erases) // 3], True), (journal[-3], False), (journal[-2], False)]
    points = fixed[:want]
    while len(points) < want:
        points.append((rng.randrange(1, n + 1), rng.random() < 0.25))
    return points


def test_wifi_power_cuts(swap):
    start, ops, image = swap["start"], swap["ops"], swap["image"]
    rng = random.Random(11)
    setting = os.environ.get("OTA_IMAGE_WIFI_CUTS", "2")
    points = [(k, False) for k in range(1, len(ops) + 1)] if setting == "all" else _points(ops, int(setting), rng)
    t = time.monotonic()
    double = 0
    for i, (k, torn) in enumerate(points):
        flash = emu.replay(start, ops, k, torn)
        second = rng.randrange(1, 400) if i % 4 == 1 else None
        d = _boot(flash, cut_after=second)
        if d.cut:  # cut again during the resumed copy, then on again
            double += 1
            assert not d.app_started
            d = _boot(d.flash())
        _whole_new_image(d, image)
    took = time.monotonic() - t
    print("\nWi-Fi image power cuts: %d points of %d flash operations (%d torn, %d cut twice), %.0f s"
          % (len(points), len(ops), sum(t for _, t in points), double, took))
    assert len(points) >= (len(ops) if setting == "all" else int(setting))


_BOOTED = """
import sys, machine
from iotlib.storage import exists
from iotlib.ota.bundle import BundleStore
from iotlib import hal
from iotlib.ota.manager import OTAUpdateManager
from iotlib.health import Health
health = Health()
health.add_check("app", lambda: (True, "ok"))
mgr = OTAUpdateManager("http://fleet/api", device_id="emu-1", store=BundleStore("ota"),
                       factory_version="1.0.0", image=hal.load().staging(), health=health,
                       reset=machine.reset)
v = mgr.after_boot()
bs = mgr.boot_state()
print("boot", bs["image_mode"], bs["image_trial_boots"], v, exists("ota/image.z"), sys.implementation._build)
"""

# Safe mode through iot_boot, as the loader leaves it after 3 unconfirmed boots (that path is
# tested with the loader itself in test_ota_image.py): scratch 1 = SAFE.
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


def test_wifi_image_trial_boots_confirm_and_safe_mode(swap, tmp_path):
    """MicroPython boots the swapped Wi-Fi image (from the recorded swap, which stopped at the
    first trial boot's jump): the loader still finds the staged file, knows it as installed, and
    the image deletes it; a boot that never confirms is counted; commit() confirms; normal."""
    async def run():
        device = _device(tmp_path, bytearray(swap["after"]))
        out = {}
        await device.astart(timeout=900)
        try:
            out["trial2"] = await _run(device, _BOOTED, timeout=300)
            await _reset(device, "import machine; machine.reset()")  # never confirms
            out["trial3"] = await _run(device, _BOOTED, timeout=300)
            await _reset(device, _BOOTED + "print(mgr.commit())", timeout=120)
            out["after"] = await _run(device, _BOOTED, timeout=300)
            out["safe"] = await _run(device, _SAFE, timeout=300)
        finally:
            device.stop()
        return out

    out = asyncio.run(run())
    print("\n%s" % out)
    assert out["trial2"].split() == ["boot", "trial", "2", "installed", "False", "PICO_W_IOT-SENSORS"], out
    assert out["trial3"].split() == ["boot", "trial", "3", "none", "False", "PICO_W_IOT-SENSORS"], out
    assert out["after"].split() == ["boot", "normal", "0", "none", "False", "PICO_W_IOT-SENSORS"], out
    lines = out["safe"].split("\n")
    assert "SAFE MODE" in out["safe"], out["safe"]
    assert "safe SafeModeController True False critical" in lines, out["safe"]
    assert "state safe" in lines, out["safe"]
    managers = [l for l in lines if l.startswith("managers")][0]
    for name in ("NetworkManager", "FleetLink", "AlarmManager", "AfterRegistration"):
        assert name in managers, managers
    assert managers.endswith("True"), managers  # no config poller
