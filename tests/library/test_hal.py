"""The hardware is chosen in one place, iotlib.hal: no other module imports machine or network
or asks sys.platform; on the unix build hal.load() picks the simulation, whose reset(cause)
notes the cause where the next boot's BootCounter reads it and exits with EXIT_RESET (75), the
code every simulated reset uses (the watchdog's, OTA's), and an unfed watchdog exits with
EXIT_WDT (76). The rp2 module is run here too, over a stand-in `machine`, to show it reports
the same cause names; tests/library/test_watchdog_manager_rp2.py boots it on the emulated chip."""
import ast
import json
import subprocess

import pytest

from harness.run import BUILD, ROOT, need
from harness.scripts import device_script, script_env

EXIT_RESET, EXIT_WDT = 75, 76  # iotlib.hal.unix
HAL = ROOT / "modules" / "iotlib" / "hal"


def hardware_probes(source):
    """(line, what) for each import of machine/network and each use of sys.platform."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
            if names == ["sys"] and any(a.name == "platform" for a in node.names):
                names = ["sys.platform"]
        elif (isinstance(node, ast.Attribute) and node.attr == "platform"
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            names = ["sys.platform"]
        else:
            continue
        found += [(node.lineno, n) for n in names if n in ("machine", "network", "sys.platform")]
    return sorted(found)


@pytest.mark.host
def test_the_probe_finder_sees_every_form():
    assert hardware_probes("import gc, machine\nfrom network import WLAN\n"
                           "from machine import Pin as P\nimport network as n\n"
                           "x = sys.platform\nfrom sys import platform\n") == [
        (1, "machine"), (2, "network"), (3, "machine"), (4, "network"), (5, "sys.platform"),
        (6, "sys.platform")]
    assert hardware_probes("import machinery\n# import machine\ns = 'sys.platform'\n") == []


@pytest.mark.host
def test_only_the_hal_touches_the_hardware():
    offenders = []
    for path in sorted((ROOT / "modules").rglob("*.py")):
        if HAL in path.parents:
            continue
        for line, what in hardware_probes(path.read_text()):
            offenders.append("%s:%d: %s" % (path.relative_to(ROOT), line, what))
    assert offenders == [], "choose the hardware in iotlib/hal only:\n" + "\n".join(offenders)
    # and the hal does: both platform modules have the same functions
    names = {}
    for platform in ("rp2", "unix"):
        tree = ast.parse((HAL / (platform + ".py")).read_text())
        names[platform] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)
                           and not n.name.startswith("_")}
    assert names["rp2"] == names["unix"] == {"reset", "reset_cause", "wdt", "rtc", "link", "pin",
                                             "adc", "staging", "sync"}


def boot(code, cwd, timeout=30, env=None):
    """One boot of the unix build running `code` in the device folder cwd: (exit code, stdout)."""
    binary = need(BUILD / "unix" / "micropython", "firmware/build.sh unix")
    p = subprocess.run([str(binary), "-c", code], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout, env=env)
    assert "Traceback" not in p.stdout + p.stderr, p.stdout + p.stderr
    return p.returncode, p.stdout


COUNT_BOOT = """
from iotlib import hal
from iotlib.boot_counter import BootCounter
h = hal.load()
boot = BootCounter()
boot.record_boot()
print("BOOT", h.__name__, h is hal.load(), boot.boot_count, boot.reset_cause)
"""


@pytest.mark.unix
def test_unix_reset_records_the_cause_and_exits_like_every_simulated_reset(tmp_path):
    code, out = boot(COUNT_BOOT + "h.reset('escalation', boot)\nprint('AFTER')\n", tmp_path)
    assert code == EXIT_RESET and out.splitlines() == [
        "BOOT iotlib.hal.unix True 1 power", "SIMRESET: device reset"], out
    assert json.loads((tmp_path / "boot.json").read_text())["pending_cause"] == "escalation"
    # no boot counter at hand (OTA's reset): the device's own file, boot.json here
    code, out = boot(COUNT_BOOT + "h.reset('requested')\n", tmp_path)
    assert code == EXIT_RESET and "BOOT iotlib.hal.unix True 2 escalation" in out, out
    code, out = boot(COUNT_BOOT, tmp_path)
    assert code == 0 and out.strip() == "BOOT iotlib.hal.unix True 3 requested", out


@pytest.mark.unix
def test_ota_reset_is_the_same_reset(tmp_path):
    code, out = boot(COUNT_BOOT + """
from iotlib.ota.bundle import BundleStore
from iotlib.ota.manager import OTAUpdateManager
ota = OTAUpdateManager("http://127.0.0.1:9/api", device_id="d", store=BundleStore("ota"),
                       factory_version="1.0.0", public_key=b"k", hal=h)
ota.reset()
""", tmp_path)
    assert code == EXIT_RESET and out.splitlines()[-1] == "SIMRESET: device reset", out
    code, out = boot(COUNT_BOOT, tmp_path)
    assert out.strip() == "BOOT iotlib.hal.unix True 2 ota", out


@pytest.mark.unix
def test_unfed_watchdog_ends_the_process_and_the_next_boot_says_wdt(tmp_path):
    code, out = boot(COUNT_BOOT + """
import time
w = h.wdt(200, lambda: boot.note_reset("wdt"))
for i in range(5):
    time.sleep_ms(100)
    w.feed()
print("FED")
time.sleep_ms(2000)
print("SURVIVED")
""", tmp_path)
    assert code == EXIT_WDT and out.splitlines()[1:] == ["FED", "SIMWDT: watchdog reset"], out
    assert boot(COUNT_BOOT, tmp_path)[1].strip() == "BOOT iotlib.hal.unix True 2 wdt"


@pytest.mark.unix
def test_a_cause_that_cannot_be_written_still_resets(tmp_path):
    code, out = boot(COUNT_BOOT + """
from iotlib.storage import Storage
h.reset("ota", BootCounter(Storage("/proc/no/such/dir")))
""", tmp_path)
    assert code == EXIT_RESET, out
    assert "reset: cause ota not recorded:" in out and "SIMRESET: device reset" in out, out
    # nothing noted: the next boot cannot say why, and says so (the previous one never stopped)
    assert boot(COUNT_BOOT, tmp_path)[1].strip() == "BOOT iotlib.hal.unix True 2 unclean"


# iotlib.hal.rp2 on the unix build, over a stand-in machine module that records what it is asked
RP2 = device_script(__file__, "rp2_hal_with_a_stand_in_machine.py")


@pytest.mark.unix
@pytest.mark.parametrize("hardware,reported", [(1, "power"), (3, "wdt")])
def test_rp2_hal_reports_the_same_cause_names(tmp_path, hardware, reported):
    code, out = boot(RP2 + "rp2.reset('escalation', boot)\n", tmp_path,
                     env=script_env(cause=hardware))
    assert code == 0 and out.split() == ["BOOT", reported, "machine.reset()"], out
    # a reset that left a note: the note wins over the chip's WDT_RESET, as on unix
    assert boot(RP2, tmp_path, env=script_env(cause=3))[1].split() == ["BOOT", "escalation"]
