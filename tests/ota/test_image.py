"""Full image swap through the loader (firmware/loader/), in rp2040py.

The loader and three small test applications linked after it (firmware/loader/testapp/) are
built with the pico-sdk. The staged image is a file in the littlefs (written here with
littlefs-python, as MicroPython's port formats it). The power is cut at flash operations
(firmware/loader/emu.py): the flash image after the n-th erase/program is saved and the chip
is powered on again from it. The same cuts on the real Wi-Fi image: test_image_wifi.py.

    IOTLIB_BUILD=/tmp/b firmware/build.sh rp2   # loader + MicroPython after it
    IOTLIB_BUILD=/tmp/b .venv/bin/python -m pytest tests/ota/test_image.py -q -s

OTA_IMAGE_CUTS=all tries every flash operation of the swap (205 points) instead of the default
sample (about 35 points: each power-on inflates the staged stream again, so a point costs about
three times what it did with the raw staging area)."""
import hashlib
import json
import os
import pathlib
import random
import struct
import subprocess
import sys
import time
import zlib

import pytest

from harness.ota_image import build_loader
from harness.run import ROOT

sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "firmware" / "loader"))
import emu  # noqa: E402
import pack_image as P  # noqa: E402

pytestmark = pytest.mark.rp2

L = P.L


@pytest.fixture(scope="module")
def bins():
    d = build_loader()
    return {n: (d / (n + ".bin")).read_bytes()
            for n in ("iot_loader", "testapp_v1", "testapp_v2", "testapp_noconfirm")}


def factory(bins, app="testapp_v1"):
    return P.factory_flash(bins["iot_loader"], bins[app])


def app_region(flash, size):
    return bytes(flash[L["APP_OFFSET"]:L["APP_OFFSET"] + size])


def verdict(device):
    """What the loader told the application about the staged file (scratch 2, bits 8-15)."""
    names = {L[k]: k[8:].lower() for k in L if k.startswith("VERDICT_")}
    return names[(device.scratch(L["SCRATCH_INFO"]) >> 8) & 0xFF]


def _cmake_layout():
    script = ROOT / "build" / "layout-print.cmake"
    script.parent.mkdir(exist_ok=True)
    script.write_text('include(%s)\nforeach(v IOT_LOADER_LENGTH IOT_APP_ORIGIN IOT_APP_LENGTH IOT_FS_SIZE)\n'
                      '  message("${v}=${${v}}")\nendforeach()\n' % (ROOT / "firmware" / "loader" / "layout.cmake"))
    out = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True, check=True).stderr
    return dict(line.split("=", 1) for line in out.split())


def test_layout(bins):
    """layout.h is the one place the layout is written: layout.cmake (budget, linker scripts,
    the board's filesystem size) reads it, as Python does, the regions tile the 2 MB
    flash, the filesystem keeps at least 512 KB and the loader fits its region."""
    cm = _cmake_layout()
    assert int(cm["IOT_APP_ORIGIN"], 16) == 0x10000000 + L["APP_OFFSET"]
    assert cm["IOT_APP_LENGTH"] == "%dk" % (L["APP_SIZE"] // 1024)
    assert cm["IOT_LOADER_LENGTH"] == "%dk" % (L["LOADER_SIZE"] // 1024)
    assert int(cm["IOT_FS_SIZE"]) == L["FS_SIZE"]
    board = (ROOT / "boards" / "PICO_W_IOT" / "mpconfigboard.cmake").read_text()
    assert "MICROPY_HW_FLASH_STORAGE_BYTES=${IOT_FS_SIZE}" in board
    assert L["JOURNAL_OFFSET"] == L["LOADER_OFFSET"] + L["LOADER_SIZE"]
    assert L["APP_OFFSET"] == L["JOURNAL_OFFSET"] + L["JOURNAL_SECTORS"] * L["FLASH_SECTOR"]
    assert L["FS_OFFSET"] == L["APP_OFFSET"] + L["APP_SIZE"]  # the image never reaches the files
    assert L["FS_OFFSET"] + L["FS_SIZE"] == L["FLASH_SIZE"] == emu.FLASH_SIZE
    assert L["FS_SIZE"] >= 512 * 1024
    # the device's numbers are generated from layout.h: tests/test_ota_image_unix.py,
    # test_frozen_layout_is_layout_h and test_editing_layout_h_changes_the_generated_numbers
    assert len(bins["iot_loader"]) <= L["LOADER_SIZE"]
    print("\nloader: %d bytes of %d" % (len(bins["iot_loader"]), L["LOADER_SIZE"]))


def test_plain_boot_writes_nothing(bins):
    d = emu.Device(factory(bins)).run()
    assert d.settled == (1, "N")
    assert d.ops == []


def test_swap_and_confirm(bins):
    v2 = bins["testapp_v2"]
    flash = factory(bins)
    P.stage(flash, v2, "2.0.0")
    t = time.monotonic()
    d = emu.Device(flash).run()
    took = time.monotonic() - t
    assert d.settled == (2, "N")
    assert d.resets == 1  # the trial boot confirmed itself (scratch + watchdog reboot)
    assert verdict(d) == "installed"  # the file has served: the application deletes it
    after = bytearray(d.flash())
    assert app_region(after, len(v2)) == v2
    assert P.fs_read(after, L["STAGE_PATH"]) is not None  # the loader never writes the filesystem
    print("\nswap of %d bytes: %.1f s in the emulator (%.1f M cycles), %d flash operations"
          % (len(v2), took, d.cycles / 1e6, len(d.ops)))
    d = emu.Device(after).run()  # the file still there (the app has not deleted it): not again
    assert d.settled == (2, "N") and d.ops == [] and verdict(d) == "installed"
    P.fs_update(after, {L["STAGE_PATH"]: None})  # what the application does after boot
    d = emu.Device(after).run()
    assert d.settled == (2, "N") and d.ops == [] and verdict(d) == "none"


def test_power_cut_during_swap(bins):
    """Cut the power at many flash operations of a swap (and again during the resumed copy):
    every power-on boots a whole image, and the swap always completes."""
    v1, v2 = bins["testapp_v1"], bins["testapp_v2"]
    start = factory(bins)
    P.stage(start, v2, "2.0.0")
    base = emu.Device(start, record=True).run()
    assert base.settled == (2, "N")
    ops = base.ops
    n = len(ops)
    rng = random.Random(7)
    if os.environ.get("OTA_IMAGE_CUTS") == "all":
        points = [(k, False) for k in range(1, n + 1)]
    else:
        points = emu.cut_points(ops, lambda a: L["JOURNAL_OFFSET"] <= a < L["APP_OFFSET"], rng,
                                edge=8, sample=10, torn=6)
    # The replayed flash is what the emulator itself leaves at a real cut (checked here on three).
    for k in (3, n // 2, n - 1):
        real = emu.Device(start, cut_after=k).run()
        assert real.cut and real.flash() == bytes(emu.replay(start, ops, k))
    t = time.monotonic()
    for k, torn in points:
        flash = emu.replay(start, ops, k, torn)
        first = emu.Device(flash, cut_after=rng.randrange(1, 60) if k % 5 == 0 else None).run()
        if first.cut:  # a second cut during the resumed copy
            assert first.settled is None
            first = emu.Device(first.flash()).run()
        assert first.settled == (2, "N"), (k, torn, first.settled, hex(first.scratch(1)))
        assert app_region(first.flash(), len(v2)) == v2, (k, torn)
    took = time.monotonic() - t
    print("\npower cuts: %d points of %d flash operations (%d torn, %d with a second cut), %.0f s"
          % (len(points), n, sum(t for _, t in points), sum(1 for k, _ in points if k % 5 == 0), took))
    assert len(points) >= (n if os.environ.get("OTA_IMAGE_CUTS") == "all" else 30)
    assert v1 != v2


def test_never_confirms_ends_in_safe_mode(bins):
    flash = factory(bins)
    P.stage(flash, bins["testapp_noconfirm"], "3.0.0")
    d = emu.Device(flash).run()
    assert d.settled == (3, "S")
    assert d.resets == emu.MAX_TRIAL_BOOTS  # three trial boots, each ended without a confirm
    assert d.scratch(2) & 0xFF == emu.MAX_TRIAL_BOOTS
    d = emu.Device(d.flash()).run()  # stays in safe mode across power cycles
    assert d.settled == (3, "S") and d.ops == []
    # From safe mode the device can still take an image: OTA is one of the safe-mode services.
    flash = bytearray(d.flash())
    P.stage(flash, bins["testapp_v2"], "2.0.1")
    d = emu.Device(flash).run()
    assert d.settled == (2, "N")


def _restage(header=None, stream=None, image=None, cut=None):
    """A staged file for testapp_v2 with one part spoilt."""
    image = image or BINS["testapp_v2"]
    stream = P.compress(image) if stream is None else stream
    head = bytearray(P.stage_header(image, stream, "2.0.0") if header is None else header)
    data = bytes(head) + stream
    return data[:cut] if cut is not None else data


def _header(**fields):
    """A header with some fields replaced, its own hash made to match (only the loader's other
    checks can refuse it)."""
    image = BINS["testapp_v2"]
    stream = P.compress(image)
    f = dict(magic=b"IOTIMG2\0", fmt=2, size=len(image), stream=len(stream), window=32768,
             sha=hashlib.sha256(image).digest())
    f.update(fields)
    head = struct.pack("<8sIIII32s16s24s", f["magic"], f["fmt"], f["size"], f["stream"], f["window"],
                       f["sha"], b"2.0.0", b"\0" * 24)
    return head + hashlib.sha256(head).digest()


BINS = {}


@pytest.mark.parametrize("case, want", [
    ("bad_hash", "bad_hash"), ("not_deflate", "bad_stream"), ("inflates_short", "bad_stream"),
    ("inflates_long", "bad_stream"), ("truncated", "truncated"), ("longer_than_header", "truncated"),
    ("header_damaged", "bad_header"), ("too_large", "bad_header"), ("format_1", "bad_header"),
    ("window_too_large", "bad_header"), ("just_a_header_part", "truncated"),
])
def test_bad_staged_file_refused_without_touching_the_app(bins, case, want):
    """A staged file that is not a whole, good image: the loader boots the old image, writes
    nothing at all (not even its journal), and says why (the application deletes the file)."""
    BINS.update(bins)
    v2 = bins["testapp_v2"]
    stream = P.compress(v2)
    data = {
        "bad_hash": lambda: _restage(header=_header(sha=bytes(32))),
        "not_deflate": lambda: _restage(stream=b"\x07" + stream[1:]),  # block type 3: no such type
        "inflates_short": lambda: _restage(header=_header(size=len(v2) + 4096)),
        "inflates_long": lambda: _restage(header=_header(size=len(v2) - 100)),
        "truncated": lambda: _restage(cut=len(_restage()) - 1000),
        "longer_than_header": lambda: _restage() + b"\0" * 10,
        "header_damaged": lambda: (lambda d: d[:12] + bytes([d[12] ^ 1]) + d[13:])(_restage()),
        "too_large": lambda: _restage(header=_header(size=L["APP_SIZE"] + 4096)),
        "format_1": lambda: _restage(header=_header(fmt=1)),
        "window_too_large": lambda: _restage(header=_header(window=65536)),
        "just_a_header_part": lambda: _restage(cut=60),
    }[case]()
    flash = factory(bins)
    P.stage(flash, None, data=data)
    d = emu.Device(flash).run()
    assert d.settled == (1, "N"), (case, d.settled, hex(d.scratch(1)))
    assert d.ops == [] and verdict(d) == want, (case, verdict(d))
    assert app_region(d.flash(), len(bins["testapp_v1"])) == bins["testapp_v1"]


def test_staging_cut_short_is_no_stage(bins):
    """The application writes `image.part` and renames it only when whole: a download cut short
    (power or link) leaves no file the loader looks at."""
    flash = factory(bins)
    P.fs_update(flash, {"ota/download.part": _restage_for(bins)[:5000]})
    d = emu.Device(flash).run()
    assert d.settled == (1, "N") and d.ops == [] and verdict(d) == "none"


def _restage_for(bins):
    BINS.update(bins)
    return _restage()


def test_sign_and_factory(bins, tmp_path):
    """`pack_image.py sign` makes a kind-"image" manifest over the same P-256 statement as
    bundles; `factory` makes a UF2 that loads into the emulator as loader + application."""
    sys.path.insert(0, str(ROOT / "tools" / "iot-sign"))
    from iot_sign.signing import load_public_key, verify_manifest, VerifyError
    app = tmp_path / "app.bin"
    app.write_bytes(bins["testapp_v2"])
    key = ROOT / "tools" / "iot-sign" / "dev-key"
    out = tmp_path / "v2.image"
    run = [sys.executable, str(ROOT / "firmware" / "pack_image.py")]
    subprocess.run(run + ["sign", "--key", str(key / "private.pem"), "--version", "2.0.0",
                          "--min-version", "1.0.0", "--out", str(out), str(app)], check=True, capture_output=True)
    manifest = json.loads((tmp_path / "v2.image.json").read_text())
    staged = out.read_bytes()  # the file the device stages: header + deflate stream
    assert staged == P.stage_file(bins["testapp_v2"], "2.0.0")
    assert manifest["kind"] == "image" and manifest["size"] == len(staged) < len(bins["testapp_v2"])
    assert manifest["sha256"] == hashlib.sha256(staged).hexdigest()
    assert zlib.decompress(staged[L["STAGE_HDR_SIZE"]:], -15) == bins["testapp_v2"]
    verify_manifest(load_public_key(str(key / "public.raw")), manifest, out.read_bytes())
    with pytest.raises(VerifyError):
        verify_manifest(load_public_key(str(key / "public.raw")), manifest, out.read_bytes()[:-1] + b"x")
    bad = tmp_path / "loader.bin"  # linked at 0x10000000: not an application image
    bad.write_bytes(bins["iot_loader"])
    proc = subprocess.run(run + ["sign", "--key", str(key / "private.pem"), "--version", "9", "--out",
                                 str(tmp_path / "x"), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "not linked after the loader" in proc.stderr
    uf2 = tmp_path / "factory.uf2"
    subprocess.run(run + ["factory", "--loader", str(tmp_path / "loader.bin"), "--app", str(app),
                          "--out", str(uf2)], check=True, capture_output=True)
    from rp2040py.device.load_flash import load_uf2
    from rp2040py.rp2040 import RP2040
    mcu = RP2040()
    load_uf2(str(uf2), mcu)
    want = P.factory_flash(bins["iot_loader"], bins["testapp_v2"])
    assert bytes(mcu.flash[0:L["FS_OFFSET"]]) == bytes(want[:L["FS_OFFSET"]])
    d = emu.Device(bytes(mcu.flash[0:emu.FLASH_SIZE])).run()
    assert d.settled == (2, "N")
