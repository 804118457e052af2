"""Full image swap through the loader (firmware/loader/), in rp2040py.

The loader and three small test applications linked after it (firmware/loader/testapp/) are
built with the pico-sdk. The power is cut at flash operations (firmware/loader/emu.py): the
flash image after the n-th erase/program is saved and the chip is powered on again from it.

    IOTLIB_BUILD=/tmp/b IOTLIB_LOADER=ON firmware/build.sh rp2   # loader + MicroPython after it
    IOTLIB_BUILD=/tmp/b .venv/bin/python -m pytest tests/test_ota_image.py -q -s

OTA_IMAGE_CUTS=all tries every flash operation of the swap (206 points, about 4 min)
instead of the default sample (about 60 points, under a minute)."""
import hashlib
import json
import os
import pathlib
import random
import struct
import subprocess
import sys
import time

import pytest

from conftest import BUILD, ROOT

sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "firmware" / "loader"))
import emu  # noqa: E402
import pack_image as P  # noqa: E402

L = P.L
FS_KB = 848


def _build_loader():
    """The loader build of the superbuild (IOTLIB_LOADER=ON), else a private one (~20 s)."""
    sup = BUILD / "rp2" / "loader"
    if (sup / "iot_loader.bin").exists() and (sup / "testapp_v2.bin").exists():
        return sup
    out = BUILD / "loader-tests"
    deps = dict(line.split("=", 1) for line in subprocess.run(
        [str(ROOT / "firmware" / "fetch_deps.sh")], capture_output=True, text=True, check=True
    ).stdout.splitlines() if "=" in line)
    subprocess.run(["cmake", "-S", str(ROOT / "firmware" / "loader"), "-B", str(out),
                    "-DPICO_SDK_PATH=" + deps["PICO_SDK_PATH"]], check=True, capture_output=True)
    proc = subprocess.run(["cmake", "--build", str(out), "-j2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def bins():
    d = _build_loader()
    return {n: (d / (n + ".bin")).read_bytes()
            for n in ("iot_loader", "testapp_v1", "testapp_v2", "testapp_noconfirm")}


def factory(bins, app="testapp_v1"):
    return P.factory_flash(bins["iot_loader"], bins[app])


def app_region(flash, size):
    return bytes(flash[L["APP_OFFSET"]:L["APP_OFFSET"] + size])


def consumed(flash):
    off = L["STAGE_HDR_OFFSET"] + L["FLASH_SECTOR"] - 4  # IOT_STAGE_CONSUMED_AT
    return bytes(flash[off:off + 4]) == b"\0\0\0\0"


def test_layout(bins):
    """layout.h, layout.cmake and the 2 MB flash agree; the loader fits its region."""
    cm = (ROOT / "firmware" / "loader" / "layout.cmake").read_text()
    assert "IOT_APP_ORIGIN 0x%x" % (0x10000000 + L["APP_OFFSET"]) in cm
    assert "IOT_APP_LENGTH %dk" % (L["APP_SIZE"] // 1024) in cm
    assert "IOT_LOADER_LENGTH %dk" % (L["LOADER_SIZE"] // 1024) in cm
    assert L["JOURNAL_OFFSET"] == L["LOADER_OFFSET"] + L["LOADER_SIZE"]
    assert L["APP_OFFSET"] == L["JOURNAL_OFFSET"] + 2 * L["FLASH_SECTOR"]
    assert L["STAGE_HDR_OFFSET"] == L["APP_OFFSET"] + L["APP_SIZE"]
    assert L["STAGE_OFFSET"] == L["STAGE_HDR_OFFSET"] + L["FLASH_SECTOR"]
    assert L["STAGE_OFFSET"] + L["APP_SIZE"] <= L["FS_OFFSET"]
    assert L["FS_OFFSET"] == 2048 * 1024 - FS_KB * 1024  # MicroPython's default, unchanged
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
    after = d.flash()
    assert app_region(after, len(v2)) == v2
    assert consumed(after)
    print("\nswap of %d bytes: %.1f s in the emulator, %d flash operations" % (len(v2), took, len(d.ops)))
    d = emu.Device(after).run()  # power cycle: confirmed, nothing written
    assert d.settled == (2, "N") and d.ops == []


def _replay(flash, ops, k, torn=False):
    """The flash after the first k flash operations of a recorded run (the k-th torn)."""
    f = bytearray(flash)
    for i, (op, addr, data) in enumerate(ops[:k]):
        half = torn and i == k - 1
        if op == emu.OP_ERASE:
            n = 2048 if half else 4096
            a = addr & ~4095
            f[a:a + n] = b"\xff" * n
        else:
            if half:
                data = data[:len(data) // 2]
            for j, b in enumerate(data):
                f[addr + j] &= b
    return f


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
        # Every journal write and the first and last sector of the copy, plus a random sample.
        journal = [i + 1 for i, (op, a, _) in enumerate(ops)
                   if L["JOURNAL_OFFSET"] <= a < L["APP_OFFSET"] or a >= L["STAGE_HDR_OFFSET"]]
        points = sorted(set(journal[:6] + journal[-8:] + list(range(1, 20)) + list(range(n - 20, n + 1))
                            + rng.sample(range(1, n + 1), 20)))
        points = [(k, False) for k in points] + [(k, True) for k in rng.sample(range(1, n + 1), 8)]
    # The replayed flash is what the emulator itself leaves at a real cut (checked here on three).
    for k in (3, n // 2, n - 1):
        real = emu.Device(start, cut_after=k).run()
        assert real.cut and real.flash() == bytes(_replay(start, ops, k))
    t = time.monotonic()
    boots = {}
    for k, torn in points:
        flash = _replay(start, ops, k, torn)
        first = emu.Device(flash, cut_after=rng.randrange(1, 60) if k % 5 == 0 else None).run()
        if first.cut:  # a second cut during the resumed copy
            assert first.settled is None
            flash = first.flash()
            first = emu.Device(flash).run()
        assert first.settled in ((1, "N"), (2, "N")), (k, torn, first.settled, hex(first.scratch(1)))
        boots[first.settled] = boots.get(first.settled, 0) + 1
        assert first.settled == (2, "N"), (k, torn)  # a staged, verified image always goes in
        assert app_region(first.flash(), len(v2)) == v2, (k, torn)
    took = time.monotonic() - t
    print("\npower cuts: %d points of %d flash operations (%d torn, %d with a second cut), %.0f s; boots %s"
          % (len(points), n, sum(t for _, t in points), sum(1 for k, _ in points if k % 5 == 0), took, boots))
    assert len(points) >= (n if os.environ.get("OTA_IMAGE_CUTS") == "all" else 50)
    assert v1 != v2


def test_never_confirms_ends_in_safe_mode(bins):
    flash = factory(bins)
    P.stage(flash, bins["testapp_noconfirm"], "3.0.0")
    d = emu.Device(flash).run()
    assert d.settled == (3, "S")
    assert d.resets == emu.MAX_TRIAL_BOOTS  # three trial boots, each ended without a confirm
    assert d.scratch(2) == emu.MAX_TRIAL_BOOTS
    d = emu.Device(d.flash()).run()  # stays in safe mode across power cycles
    assert d.settled == (3, "S") and d.ops == []
    # From safe mode the device can still take an image: OTA is one of the safe-mode services.
    flash = bytearray(d.flash())
    P.stage(flash, bins["testapp_v2"], "2.0.1")
    d = emu.Device(flash).run()
    assert d.settled == (2, "N")


def test_bad_staged_image_refused(bins):
    v2 = bins["testapp_v2"]
    flash = factory(bins)
    P.stage(flash, v2, "2.0.0")
    flash[L["STAGE_OFFSET"] + 5000] ^= 1  # bytes no longer hash to the header
    d = emu.Device(flash).run()
    assert d.settled == (1, "N") and d.scratch(2) == 0x42414448  # "BADH"
    assert consumed(d.flash()) and app_region(d.flash(), len(bins["testapp_v1"])) == bins["testapp_v1"]
    flash = factory(bins)  # power cut while the application was staging: bytes, no header
    flash[L["STAGE_OFFSET"]:L["STAGE_OFFSET"] + len(v2) // 2] = v2[:len(v2) // 2]
    d = emu.Device(flash).run()
    assert d.settled == (1, "N") and d.ops == []
    flash = factory(bins)
    P.stage(flash, v2, "2.0.0")
    flash[L["STAGE_HDR_OFFSET"] + 12] ^= 1  # header damaged: not a staged image at all
    d = emu.Device(flash).run()
    assert d.settled == (1, "N") and d.ops == []


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
    assert manifest["kind"] == "image" and manifest["size"] == len(bins["testapp_v2"])
    assert manifest["sha256"] == hashlib.sha256(bins["testapp_v2"]).hexdigest()
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
