# Safe mode: the image never confirmed itself after an image OTA, and the loader
# (firmware/loader/) now boots it with mode "safe" (iotlib.ota.image: boot_mode()). The
# role's code is not imported at all; the device runs only what it needs to be reached and
# repaired: network, health (/health/*), registration and heartbeats, alarms (to report the
# state) and OTA (to take the next image). iot_boot picks this class instead of the role.
from iotlib.role_base import RoleController

ALARM = "safe_mode"


class SafeModeController(RoleController):
    SAFE_MODE = True
    LISTENING = "safe mode: API listening (network, health, OTA only)"

    def __init__(self, **kwargs):
        base = {}
        for key in ("device_id", "service_discovery_url", "tenant", "namespace", "host", "port",
                    "rate_limit", "auth", "logger", "audit", "alarms", "metrics", "health"):
            if key in kwargs:
                base[key] = kwargs[key]
        RoleController.__init__(self, **base)  # no config poller, no state, no role work
