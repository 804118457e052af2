"""The images the build produces: what a user flashing or running them sees."""
import ast
import os
import pathlib
import re
import subprocess

import pytest

from harness.run import BUILD, ROOT, VARIANTS, run_rp2, run_unix, uf2

FROZEN_MUST_HAVE = ("iotlib", "microdot", "asyncio", "iot_boot", "main", "_boot")
# The variant decides which role is compiled in.
ROLE_MODULE = {"RELAYS": "relays_controller", "SENSORS": "sensors_controller"}
# and what only that role uses (flash is the budget): its config sections, its library modules
ROLE_ONLY = {"RELAYS": {"relays_controller", "relays_schema", "iotlib/daily_windows"},
             "SENSORS": {"sensors_controller", "sensors_schema", "iotlib/websocket", "iotlib/ws_stream"}}


@pytest.mark.unix
def test_unix_binary_imports_library_roles_and_c_module():
    out = run_unix(
        "import _iotlib, iotlib, relays_controller, sensors_controller, microdot, asyncio, tls\n"
        "print(repr(_iotlib.build_info()))\n"
        "print(relays_controller.ROLE, sensors_controller.ROLE)\n")
    lines = out.splitlines()
    info = ast.literal_eval(lines[0])
    assert info["backend"] == "sim"
    assert info["micropython"] == "1.25.0"
    assert info["version"] == (ROOT / "firmware" / "VERSION").read_text().strip()
    assert lines[1] == "relays sensors"


@pytest.mark.unix
def test_unix_modules_are_frozen_not_read_from_disk(tmp_path):
    # From an empty folder with no MICROPYPATH entries on disk, the library still imports.
    out = run_unix("import iotlib.buildinfo, sys\nprint(iotlib.buildinfo.__file__)",
                   cwd=tmp_path, env={"MICROPYPATH": ".frozen"})
    assert out.strip() == "iotlib/buildinfo.py"


@pytest.mark.rp2
@pytest.mark.parametrize("variant", VARIANTS)
def test_uf2_boots_in_emulator_and_reports_itself(variant):
    out = run_rp2(variant,
                  "import _iotlib, gc, sys\n"
                  "gc.collect()\n"
                  "i = _iotlib.build_info()\n"
                  "print('variant=%s mp=%s backend=%s wireless=%s free=%d' % ("
                  "i['variant'], i['micropython'], i['backend'], i['wireless'], gc.mem_free()))\n"
                  "print(sys.implementation._build)\n")
    m = re.search(r"variant=(\w+) mp=([\d.]+) backend=(\w+) wireless=(\w+) free=(\d+)", out)
    assert m, out
    assert m.group(1) == variant
    assert m.group(2) == "1.25.0"
    assert m.group(3) == "rp2040"
    assert m.group(4) == "True"  # the product: the Wi-Fi image (booted here on the plain board)
    free = int(m.group(5))
    print("%s free heap at the REPL: %d bytes" % (variant, free))
    assert free > 200 * 1024
    assert "PICO_W_IOT-%s" % variant in out


@pytest.mark.rp2
@pytest.mark.parametrize("variant", VARIANTS)
def test_unprovisioned_device_boots_to_repl_with_a_reason(variant):
    # The frozen main.py ran at boot, found no /device.json and left the REPL free.
    out = run_rp2(variant, "import iot_boot\niot_boot.run()")
    assert "not provisioned" in out and variant in out


@pytest.mark.host
@pytest.mark.parametrize("variant", VARIANTS)
def test_picotool_info_lists_frozen_modules(variant, deps):
    proc = subprocess.run([deps["PICOTOOL"], "info", str(uf2(variant))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    listing = proc.stdout.split("frozen modules:", 1)[1].split("binary start", 1)[0]
    frozen = {name.strip() for name in re.split(r"[,\s]+", listing) if name.strip()}
    for name in FROZEN_MUST_HAVE + tuple(ROLE_ONLY[variant]):
        assert name in frozen, (name, sorted(frozen))
    others = set().union(*(ROLE_ONLY[v] for v in ROLE_ONLY if v != variant))
    assert not others & frozen, sorted(frozen)


def image_budget_kb():
    """The application region when the OTA loader is built (the default), else 900 KB."""
    if not (BUILD / "rp2" / "loader" / "iot_loader.bin").exists():
        return 900
    layout = (ROOT / "firmware" / "loader" / "layout.h").read_text()
    return int(re.search(r"IOT_APP_SIZE\s+(0x[0-9a-fA-F]+)u", layout).group(1), 16) // 1024


@pytest.mark.host
@pytest.mark.parametrize("variant", VARIANTS)
def test_image_fits_flash_budget(variant):
    image = BUILD / "rp2" / variant / "firmware.bin"
    size_kb = image.stat().st_size / 1024
    budget = image_budget_kb()
    print("%s image: %.1f KB of %d KB budget" % (variant, size_kb, budget))
    assert budget <= 1200
    assert budget - size_kb >= 64, "less than 64 KB left to grow into"


@pytest.mark.qemu
def test_qemu_image_runs_c_module():
    elf = BUILD / "qemu" / "firmware.elf"
    assert elf.exists(), "build it with firmware/build.sh qemu"
    script = b"import _iotlib\r\nprint('backend', _iotlib.build_info()['backend'], 'ok')\r\n"
    proc = subprocess.Popen(
        ["qemu-system-arm", "-machine", "mps2-an385", "-nographic", "-monitor", "null",
         "-semihosting", "-serial", "stdio", "-kernel", str(elf)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(script, timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert b"backend sim ok" in out, out


@pytest.mark.unix
def test_micropython_own_test_suite_passes_on_our_binary(deps):
    tests = pathlib.Path(deps["MICROPY_DIR"]) / "tests"
    env = dict(os.environ, MICROPY_MICROPYTHON=str(BUILD / "unix" / "micropython"))
    # These four import micropython-lib's unittest, which the Debian tarball does not carry.
    exclude = r"extmod/(machine1|marshal_micropython|ssl_noleak|vfs_rom)\.py"
    proc = subprocess.run(
        ["bash", "-c", "ulimit -n 1024 && exec python3 run-tests.py -j2 "
         "-d basics extmod float micropython misc unicode io import -e '%s'" % exclude],
        cwd=tests, env=env, capture_output=True, text=True, timeout=600)
    summary = proc.stdout[-3000:]
    assert proc.returncode == 0, summary
    performed = int(re.search(r"(\d+) tests performed", proc.stdout).group(1))
    passed = int(re.search(r"(\d+) tests passed", proc.stdout).group(1))
    assert performed == passed and performed > 800, summary


@pytest.mark.host
def test_the_build_prints_each_wifi_image_size_against_its_budget():
    # What `make` shows a user: one line per image with its headroom (the variants build in
    # parallel, and their lines once ran together on one line of the log).
    proc = subprocess.run([str(ROOT / "firmware" / "build.sh"), "rp2"], capture_output=True,
                          text=True, timeout=900, env=dict(os.environ, IOTLIB_BUILD=str(BUILD)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    sizes = {}
    for line in proc.stderr.splitlines():
        m = re.fullmatch(r"size: (PICO_W_IOT-\w+): ([\d.]+) KB of (\d+) KB budget \(\d+%\), "
                         r"([\d.]+) KB headroom", line)
        if m:
            sizes[m.group(1)] = float(m.group(4))
        else:
            assert "KB headroom" not in line, line
    assert sorted(sizes) == ["PICO_W_IOT-%s" % v for v in VARIANTS], proc.stderr
    assert all(headroom >= 64 for headroom in sizes.values()), sizes
