"""Power cuts during the swap of the real Wi-Fi image, in rp2040py (firmware/loader/emu.py).

The factory flash holds the loader and the Wi-Fi RELAYS image; the Wi-Fi SENSORS image is
staged as the loader's compressed file in littlefs (as OTAUpdateManager leaves it). One swap is
recorded (every flash erase and page program), then the flash as it is after the k-th
operation is powered on again: the loader must resume and jump into the whole SENSORS image
(trial mode). The boot stops where the loader jumps into the application (the plain `pico`
board: the loader needs no radio). Every fourth point is cut a second time during its resumed
copy. test_ota_image.py does the same on a small test application at many more points.

    firmware/build.sh rp2 && .venv/bin/python -m pytest tests/test_ota_image_wifi.py -q -s

OTA_IMAGE_WIFI_CUTS=<n> tries n points (default 6: CI's share of its 25 minutes, about a
minute each on a loaded 2-core machine); OTA_IMAGE_WIFI_CUTS=all tries every operation
(about 4,000: hours).
"""
import os
import random
import sys
import time

import pytest

from conftest import BUILD, ROOT

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


@pytest.fixture(scope="module")
def swap():
    img = _images()
    start = P.factory_flash(img["loader"], img["RELAYS"])
    staged = P.stage(start, img["SENSORS"], "9.0.0")
    t = time.monotonic()
    base = _boot(start, record=True)
    wall = time.monotonic() - t
    _whole_new_image(base, img["SENSORS"])
    assert (base.scratch(L["SCRATCH_INFO"]) >> 8) == L["VERDICT_INSTALLED"]
    return {"start": start, "ops": base.ops, "image": img["SENSORS"], "staged": staged,
            "wall": wall, "cycles": base.cycles, "relays": img["RELAYS"]}


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
    fixed = [(journal[1], False), (programs[len(programs) // 2], True), (erases[len(erases) // 3], True),
             (journal[-3], False), (journal[-2], False), (n, False)]
    points = fixed[:want]
    while len(points) < want:
        points.append((rng.randrange(1, n + 1), rng.random() < 0.25))
    return points


def test_wifi_power_cuts(swap):
    start, ops, image = swap["start"], swap["ops"], swap["image"]
    rng = random.Random(11)
    setting = os.environ.get("OTA_IMAGE_WIFI_CUTS", "6")
    points = [(k, False) for k in range(1, len(ops) + 1)] if setting == "all" else _points(ops, int(setting), rng)
    t = time.monotonic()
    double = 0
    for i, (k, torn) in enumerate(points):
        flash = emu.replay(start, ops, k, torn)
        second = rng.randrange(1, 400) if i % 4 == 3 else None
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
