"""The image loader's power-cut safety at every flash operation of the real Wi-Fi swap, on the host.

firmware/loader/host/ builds the loader's own C sources (loader.c, stage_file.c, sha256.c,
unchanged, with MicroPython's lib/littlefs and lib/uzlib) with gcc for this machine, against a
small shim of the pico-sdk: the 2 MB flash mapped at 0x10000000 with the NOR semantics of
firmware/loader/emu.py, an operation counter that cuts the power after operation n (torn: half
a page), and the jump into the application reported as "boots this image". A power-on costs
milliseconds instead of rp2040py's ~140 s, so every operation of the swap can be cut.

1. The cross-check (test_host_matches_emulator): from the same flash, rp2040py running the ARM
   loader (emu.Device) and the host build must leave byte-identical flash, the same sequence
   of (opcode, address) flash operations and the same boot mode and info, for an uncut swap
   and at three cut points (the copy's first journal record, a torn page program mid-copy, the
   DONE record) plus the power-on after each. 50 KB test application (firmware/loader/testapp),
   so the emulator part takes seconds. OTA_LOADER_HOST_EMU_WIFI=1 adds one point on the Wi-Fi
   image (the uncut swap, then the last sector's journal record torn: about 3.5 minutes).
2. The sweep (test_wifi_power_cut_at_every_operation): RELAYS in the factory flash, the Wi-Fi
   SENSORS image staged (as test_image_wifi.py builds it); the swap is recorded and cut after
   operation k, plain and torn, then powered on until it boots: every boot must be the whole
   new image (trial mode, verdict installed; the old one would only be allowed before the
   copy's first journal record), the loader region and the filesystem untouched; the first
   power-on after the cut must resume the journalled copy (no more sectors erased than were
   left, no new journal sector: not a copy started over); one more power-on must be the next
   trial boot (count + 1) writing nothing but the journal. At every 50th operation cut (plain
   and torn) the resumed copy is cut a second time. The replayed flash at a cut is checked
   against a real cut by the operation counter at every 16th point. OTA_LOADER_HOST_CUTS=all
   cuts every operation (7,660 cuts: 88 s on a quiet 2-core machine, minutes when it is loaded,
   over one test's budget); the default is every 4th operation plus every journal write and the
   first and last 20 (2,340 cuts, 28-53 s).

    firmware/build.sh rp2 && .venv/bin/python -m pytest tests/ota/test_loader_host.py -q -s
"""
import os
import pathlib
import subprocess
import sys
import time

import pytest

from harness.ota_image import build_loader, wifi_images, wifi_swap_start
from harness.run import ROOT

sys.path.insert(0, str(ROOT / "firmware"))
sys.path.insert(0, str(ROOT / "firmware" / "loader"))
sys.path.insert(0, str(ROOT / "firmware" / "loader" / "host"))
import emu  # noqa: E402
import host_build  # noqa: E402
import pack_image as P  # noqa: E402

L = P.L
APP, JOURNAL = L["APP_OFFSET"], L["JOURNAL_OFFSET"]
WORKERS = 2
DEFAULT_STRIDE = 4


@pytest.fixture(scope="module")
def host_loader(tmp_path_factory):
    return host_build.build(tmp_path_factory.mktemp("loader-host"))


class Boot:
    """One power-on of the host build from a flash image (loader_host boot)."""

    def __init__(self, exe, flash, tmp: pathlib.Path, cut=None, torn=False):
        src, out, ops = tmp / "in.bin", tmp / "out.bin", tmp / "ops.txt"
        src.write_bytes(bytes(flash))
        args = [str(exe), "boot", str(src), str(out), "--ops", str(ops)]
        if cut is not None:
            args += ["--cut", str(cut)] + (["--torn"] if torn else [])
        line = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
        self.status, self.mode, self.info, self.halt = line[0], int(line[1], 16), int(line[2], 16), int(line[4], 16)
        self.flash = out.read_bytes()
        self.ops = [tuple(int(x) for x in l.split()) for l in ops.read_text().splitlines()]


def _emu_boot(flash, **kw):
    """One power-on in rp2040py up to the jump into the application. The run is checked only
    between batches of up to a million instructions, time enough for the test application to
    confirm itself and reset into the loader again (which appends CONF): the application's
    watchdog reboot stops the emulator instead (it writes no flash before it)."""
    d = emu.Device(flash, record=True, **kw)

    def stop():
        d.sim.stopped = True

    d.mcu.watchdog.on_watchdog_trigger = stop
    return d.run(timeout_s=1800, until_app=True, app_offset=APP)


def _emu_ops(d):
    return [(op, addr) for op, addr, _ in d.ops]


def _same(e, h, what):
    """emu.Device e and Boot h did the same: flash, operations, and (if it booted) the boot."""
    assert _emu_ops(e) == h.ops, (what, len(e.ops), len(h.ops))
    assert e.flash() == h.flash, what
    if e.cut:
        assert h.status == "cut", (what, h.status)
    else:
        assert e.app_started and h.status == "jumped", (what, h.status)
        assert (e.scratch(L["SCRATCH_BOOTMODE"]), e.scratch(L["SCRATCH_INFO"])) == (h.mode, h.info), what


def _journal_programs(ops):
    return [i + 1 for i, (op, a) in enumerate(ops) if op == emu.OP_PROGRAM and JOURNAL <= a < APP]


def _cross_check(exe, start, points, tmp):
    """The uncut run, then each (k, torn) cut and the power-on after it, in both models."""
    e = _emu_boot(start)
    h = Boot(exe, start, tmp)
    _same(e, h, "uncut")
    for k, torn in points(h.ops):
        ec = emu.Device(start, cut_after=k, torn=torn, record=True).run(timeout_s=1800)
        assert ec.cut
        hc = Boot(exe, start, tmp, cut=k, torn=torn)
        _same(ec, hc, ("cut", k, torn))
        er = _emu_boot(ec.flash())
        hr = Boot(exe, hc.flash, tmp)
        _same(er, hr, ("after the cut", k, torn))
        assert hr.mode == L["BOOT_TRIAL"]
    return len(h.ops)


@pytest.mark.rp2
def test_host_matches_emulator(host_loader, tmp_path):
    bins = {n: (build_loader() / (n + ".bin")).read_bytes() for n in ("iot_loader", "testapp_v1", "testapp_v2")}
    start = P.factory_flash(bins["iot_loader"], bins["testapp_v1"])
    P.stage(start, bins["testapp_v2"], "2.0.0")

    def points(ops):
        journal = _journal_programs(ops)  # HEAD + COPY, SECT per sector, DONE, BOOT
        app_programs = [i + 1 for i, (op, a) in enumerate(ops) if op == emu.OP_PROGRAM and a >= APP]
        return [(journal[0], False), (app_programs[len(app_programs) // 2], True), (journal[-2], False)]

    t = time.monotonic()
    n = _cross_check(host_loader, start, points, tmp_path)
    print("\ncross-check (50 KB test application): uncut swap of %d flash operations and 3 cuts + "
          "their resumed boots identical in rp2040py and the host build, %.0f s" % (n, time.monotonic() - t))


def _host_matches_emulator_wifi(host_loader, tmp_path):
    img = wifi_images()
    start, _ = wifi_swap_start(img)
    t = time.monotonic()
    # The last sector's journal record, torn: the emulator's cut run is all but the swap's last
    # two operations (compared with the host's), and the resumed boot finds that sector in
    # place, journals it again, then DONE and the trial boot.
    n = _cross_check(host_loader, start, lambda ops: [(_journal_programs(ops)[-3], True)], tmp_path)
    print("\ncross-check (Wi-Fi image): uncut swap of %d flash operations, the last SECT record torn "
          "and the resumed boot identical in rp2040py and the host build, %.0f s" % (n, time.monotonic() - t))


# Opt-in (about 3.5 min of emulator time): collected only with OTA_LOADER_HOST_EMU_WIFI=1, so a
# default run neither runs nor reports it as skipped.
if os.environ.get("OTA_LOADER_HOST_EMU_WIFI"):
    test_host_matches_emulator_wifi = _host_matches_emulator_wifi


@pytest.fixture(scope="module")
def wifi_start(tmp_path_factory):
    """The flash before the swap, as test_image_wifi.py makes it, saved to files."""
    img = wifi_images()
    d = tmp_path_factory.mktemp("wifi-swap")
    start, _ = wifi_swap_start(img)
    for name, data in (("start.bin", start), ("RELAYS.bin", img["RELAYS"]), ("SENSORS.bin", img["SENSORS"])):
        (d / name).write_bytes(bytes(data))
    return d


@pytest.mark.host
def test_wifi_power_cut_at_every_operation(host_loader, wifi_start):
    every = os.environ.get("OTA_LOADER_HOST_CUTS") == "all"
    stride = 1 if every else DEFAULT_STRIDE
    t = time.monotonic()
    procs = [subprocess.Popen([str(host_loader), "sweep", str(wifi_start / "start.bin"),
                               str(wifi_start / "RELAYS.bin"), str(wifi_start / "SENSORS.bin"),
                               "--stride", str(stride), "--workers", str(WORKERS), "--worker", str(i),
                               "--double-every", "50"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(WORKERS)]
    outs = [p.communicate() for p in procs]
    wall = time.monotonic() - t
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err
    res = [dict(zip(o.split()[::2], o.split()[1::2])) for o, _ in outs]
    total = {k: sum(int(r[k]) for r in res) for k in ("points", "torn", "power_ons", "boots_new", "boots_old",
                                                      "doubles", "replay_checks", "failures")}
    ops = int(res[0]["ops"])
    print("\nWi-Fi swap on the host: %d flash operations; %d power cuts (%d torn: half a page or half a "
          "sector), %d of them cut a second time during the resumed copy; %d power-ons, every boot the "
          "whole SENSORS image (%d), old image %d; %d replayed cuts checked against the counter; %.1f s wall "
          "(%d processes)" % (ops, total["points"], total["torn"], total["doubles"], total["power_ons"],
                              total["boots_new"], total["boots_old"], total["replay_checks"], wall, WORKERS))
    assert total["failures"] == 0
    assert total["boots_new"] == total["points"]
    assert total["doubles"] > 0
    assert ops > 3000  # the Wi-Fi image, not a test application
    if every:
        assert total["points"] == 2 * ops
    else:
        assert total["points"] >= 2 * ops // DEFAULT_STRIDE
