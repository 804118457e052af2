# The collaborators every fleet-manager device script starts with (tests/harness/fleet_device.py's
# prelude); PRELUDE, set in front: device_id, fleet_url, store (folder), device_key, tenant, namespace.
import asyncio, sys, time
from iotlib.auth_manager import AuthManager
from iotlib.storage import Storage
from iotlib.boot_counter import BootCounter
from iotlib.alarm_manager import AlarmManager
from iotlib.watchdog_manager import WatchdogManager
from iotlib.state_manager import StateManager
from iotlib.timesync_manager import TimeSyncManager
def log(*a):
    print(*a)
DEVICE = PRELUDE["device_id"]
SD = PRELUDE["fleet_url"]
store = Storage(PRELUDE["store"])
auth = AuthManager(PRELUDE["device_key"], tenant=PRELUDE["tenant"], namespace=PRELUDE["namespace"])
boot = BootCounter(store)
boot.record_boot()
print("BOOT", boot.boot_count, boot.reset_cause, boot.unconfirmed)
