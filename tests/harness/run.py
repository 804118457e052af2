"""The images we built, run the way a user runs them.

`make test` builds first; IOTLIB_BUILD points at another build folder when set.
A missing image is a failure with the command to build it, never a skip.
"""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
VARIANTS = ("RELAYS", "SENSORS")
RP2040PY = shutil.which("rp2040py") or str(pathlib.Path(sys.executable).parent / "rp2040py")


def need(path, how):
    if not path.exists():
        pytest.fail("%s is missing: build it with `%s`" % (path, how))
    return path


class MicroPythonError(AssertionError):
    """A script failed inside MicroPython; the message carries its traceback."""


def run_unix(code, timeout=30, env=None, cwd=None, check=True):
    """Run `code` in our unix simulation binary; return its stdout (str)."""
    binary = need(BUILD / "unix" / "micropython", "firmware/build.sh unix")
    proc = subprocess.run([str(binary), "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        raise MicroPythonError("exit %d\n--- stdout\n%s--- stderr\n%s"
                               % (proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


def uf2(variant):
    return need(BUILD / "rp2" / ("PICO_W_IOT-%s.uf2" % variant), "firmware/build.sh rp2")


def run_rp2(variant, code, timeout=120):
    """Boot the variant's UF2 in rp2040py and run `code` over its raw REPL; return stdout."""
    proc = subprocess.run(
        [RP2040PY, "micropython", "--image", str(uf2(variant)), "-c", code],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0 or "Traceback" in proc.stdout:
        raise MicroPythonError("exit %d\n--- stdout\n%s--- stderr\n%s"
                               % (proc.returncode, proc.stdout, proc.stderr))
    return proc.stdout


VENV_BIN = pathlib.Path(sys.executable).parent  # fleet-server, fleet-admin, rp2040py
SIM_EXIT_RESET, SIM_EXIT_WDT = 75, 76  # iotlib.hal.unix: the simulated resets
POWER_ON = 1609459200  # 2021-01-01, the RP2040 RTC's value at power-on (the simulation's too)
DEV_KEY = ROOT / "tools" / "iot-sign" / "dev-key" / "private.pem"  # the OTA key the build trusts

