"""`from iotlib import <Manager>` as the original design writes it, on the unix build: each
name resolves to its class, only the module that defines it is loaded, and submodule imports
(`from iotlib import jwt`) still work beside the hook."""

import pytest
from harness.run import run_unix

pytestmark = pytest.mark.unix

MANAGERS = ("NetworkManager", "AuthManager", "ConfigManager", "WatchdogManager", "StateManager",
            "Logger", "TimeSyncManager", "AlarmManager", "OTAUpdateManager", "Health", "Metrics")


def test_every_manager_imports_from_the_package_by_name():
    out = run_unix("""
from iotlib import %s
import iotlib
for name in %r:
    cls = getattr(iotlib, name)
    print(name, type(cls) is type and cls.__name__ == name)
""" % (", ".join(MANAGERS), MANAGERS)).split("\n")
    assert out[:len(MANAGERS)] == ["%s True" % n for n in MANAGERS]


def test_one_name_loads_only_its_own_module():
    out = run_unix("""
import sys
from iotlib import NetworkManager
loaded = sorted(m for m in sys.modules if m.startswith("iotlib"))
print("iotlib.network_manager" in loaded, "iotlib.ota.manager" in loaded,
      "iotlib.config_manager" in loaded, "iotlib.alarm_manager" in loaded)
""").strip()
    assert out == "True False False False"


def test_submodules_still_import_and_an_unknown_name_is_named():
    out = run_unix("""
from iotlib import jwt
print(jwt.__name__)
try:
    from iotlib import NoSuchManager
except ImportError as e:
    print("ImportError", e)
""").split("\n")
    assert out[0] == "iotlib.jwt"
    assert out[1] == "ImportError no module named 'iotlib.NoSuchManager'"
