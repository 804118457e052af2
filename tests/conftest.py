"""Shared fixtures and the platform markers. The code they use lives in tests/harness/; test
modules import from there, never from each other.

Every test module says which platform it runs on with `pytestmark` (pytest.ini lists them);
a module without one is a collection error, so `pytest -m unix` and friends select everything.
"""
import os
import subprocess

import pytest

from harness.fleet_device import Fleet
from harness.role_device import RoleDevice
from harness.run import ROOT, run_rp2, run_unix

# The unix build's simulated RTC starts at 2021-01-01 as the RP2040's does, and the API then
# answers 503 until SNTP. Tests of everything but the clock run the device with an RTC that
# follows the host (a board with a battery-backed RTC); device/test_wallclock.py sets its own.
os.environ.setdefault("IOTLIB_SIM_RTC", "host")

PLATFORMS = ("unix", "rp2", "picow", "qemu", "host")


@pytest.hookimpl(tryfirst=True)  # before -m deselects them: an unmarked module is never silently left out
def pytest_collection_modifyitems(config, items):
    unmarked = sorted({str(item.path.relative_to(ROOT)) for item in items
                       if not any(item.get_closest_marker(p) for p in PLATFORMS)})
    if unmarked:
        raise pytest.UsageError("no platform marker (pytestmark = pytest.mark.<%s>) in: %s"
                                % ("|".join(PLATFORMS), ", ".join(unmarked)))


@pytest.fixture
def micropython():
    return run_unix


@pytest.fixture
def rp2():
    return run_rp2


@pytest.fixture(scope="session")
def deps():
    """The resolved dependency paths (MICROPY_DIR, PICOTOOL, ...), from the warm cache."""
    proc = subprocess.run([str(ROOT / "firmware" / "fetch_deps.sh")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


@pytest.fixture
def fleet(tmp_path):
    """fleet-server for device scripts, started by the test once its devices are provisioned."""
    # plain HTTP on loopback: a device script without api_key (the seed's form) may fetch it
    f = Fleet(tmp_path, {"ntp_servers": ["127.0.0.1:9"], "heartbeat_s": 5, "api_key_over_http": True})
    yield f
    f.stop()


@pytest.fixture
def role_device(tmp_path):
    """start(role, **device.json settings): a RoleDevice up and serving; all stopped after."""
    devices = []

    def start(role, **settings):
        d = RoleDevice(tmp_path, role, **settings).start()
        devices.append(d)
        return d
    yield start
    for d in devices:
        d.stop()
