# iotlib: the managers every device role is built from. Importing the package has no
# side effects (no Wi-Fi, flash or network). `from iotlib import NetworkManager` works as the
# original design shows, yet loads only the module that defines it: the names below resolve
# on first use (module-level __getattr__), so a role spends RAM only on what it uses.
__version__ = "0.1.0"

# public name -> the module (inside iotlib) that defines it
_EXPORTS = {
    "NetworkManager": "network_manager",
    "AuthManager": "auth_manager",
    "ConfigManager": "config_manager",
    "WatchdogManager": "watchdog_manager",
    "StateManager": "state_manager",
    "Logger": "logger",
    "TimeSyncManager": "timesync_manager",
    "AlarmManager": "alarm_manager",
    "OTAUpdateManager": "ota.manager",
    "Health": "health",
    "Metrics": "metrics",
}


def __getattr__(name):
    # MicroPython asks this hook before it imports a submodule by `from iotlib import jwt`,
    # and an AttributeError here would end that import: so a name that is not an export is
    # imported as a submodule (an unknown one raises ImportError naming it).
    module = _EXPORTS.get(name, name)
    value = __import__("iotlib." + module, None, None, (name,))
    if module != name:
        value = getattr(value, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value
