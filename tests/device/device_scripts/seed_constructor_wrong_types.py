# Run by tests/device/test_seed_example.py.
from iotlib import NetworkManager, AuthManager, ConfigManager, Logger, WatchdogManager, StateManager, TimeSyncManager, AlarmManager, OTAUpdateManager
auth = AuthManager("device_key")
for make in (lambda: NetworkManager(42, "PASSWORD"),
             lambda: AuthManager(b"device_key"),
             lambda: ConfigManager("https://configserver/api", "device_id", auth),
             lambda: Logger(mask_fields="token"),
             lambda: WatchdogManager(auth, "https://servicediscovery/api", "device_id"),
             lambda: StateManager("https://stateserver/api", auth, 7),
             lambda: TimeSyncManager("pool.ntp.org"),
             lambda: AlarmManager({"url": "https://alarms/api"}, auth, "device_id"),
             lambda: OTAUpdateManager(auth, "https://updates/api")):
    try:
        make()
        print("accepted")
    except TypeError as e:
        print(e)
