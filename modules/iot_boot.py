# Decide what the device runs at boot: the user's /main.py, the variant's role, or the REPL.
#
# The role comes from the image's variant (RELAYS/SENSORS); the unix simulation (variant
# SIM) takes it from device.json's "role". device.json (in the current directory: / on
# the device, the device's folder in simulation) holds the provisioning:
#   {"device_id", "device_key", "api_key", "tenant", "namespace", "role",
#    "service_discovery_url", "host", "port", "wifi_ssid", "wifi_password",
#    relays: "relay_pins" | "relays", "interlocks";  sensors: "fields", "max_clients", ...}
# Every other key the controller accepts may be given too (see the controllers' docs).
import json
import os

from iotlib.buildinfo import build_info

PROVISIONING_FILE = "device.json"
ROLES = ("relays", "sensors")
# device.json keys that are ours, not the controller's
_BOOT_KEYS = ("role",)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def role_for_variant(variant):
    if variant == "RELAYS":
        import relays_controller
        return relays_controller.RelaysController
    if variant == "SENSORS":
        import sensors_controller
        return sensors_controller.SensorsController
    return None


def role_for_name(role):
    return role_for_variant(role.upper()) if role in ROLES else None


def load_settings(path=PROVISIONING_FILE):
    """device.json as a dict; ValueError names what is wrong with it."""
    with open(path) as f:
        try:
            settings = json.load(f)
        except ValueError:
            raise ValueError("%s: not valid JSON" % path)
    if not isinstance(settings, dict):
        raise ValueError("%s: must be a JSON object" % path)
    for key in ("device_id", "api_key"):
        if not settings.get(key):
            raise ValueError("%s: %s is missing" % (path, key))
    return settings


def build_collaborators(settings):
    """The managers every role shares, built once here and handed to the controller.

    Fleet managers (registration, watchdog, config, state, alarms, timesync) plug in here:
    add them to the returned dict under the controller's parameter names ("config",
    "state", "alarms", "audit", "logger", "managers").
    """
    from iotlib.auth_manager import AuthManager
    from iotlib.health import Health
    from iotlib.metrics import Metrics, register_runtime

    metrics = Metrics()
    register_runtime(metrics)
    health = Health()
    auth = AuthManager(settings.get("device_key"), tenant=settings.get("tenant"),
                       namespace=settings.get("namespace"), api_key=settings.get("api_key"))
    roles = (settings.get("rbac") or {}).get("roles")
    if roles:
        auth.set_roles(roles)
    auth.register(metrics, health)
    return {"auth": auth, "metrics": metrics, "health": health}


def make_controller(controller_class, settings):
    kwargs = {}
    for key, value in settings.items():
        if key not in _BOOT_KEYS and key != "rbac":
            kwargs[key] = value
    kwargs.update(build_collaborators(settings))
    return controller_class(**kwargs)


def run():
    info = build_info()
    if _exists("main.py"):  # the filesystem's own main.py, when a user installed one
        exec(open("main.py").read(), {"__name__": "__main__"})
        return
    controller_class = role_for_variant(info["variant"])
    if controller_class is None and info["variant"] not in ("SIM", "NONE"):
        return
    if not _exists(PROVISIONING_FILE):
        print("iotlib %s (%s): not provisioned, no /%s; staying at the REPL"
              % (info["version"], info["variant"], PROVISIONING_FILE))
        return
    settings = load_settings()
    if controller_class is None:  # simulation: the provisioning names the role
        controller_class = role_for_name(settings.get("role"))
        if controller_class is None:
            print("iotlib: %s: role must be one of %s" % (PROVISIONING_FILE, ", ".join(ROLES)))
            return
    controller = make_controller(controller_class, settings)
    print("iotlib %s: starting %s %s on port %s"
          % (info["version"], controller_class.__name__, settings["device_id"],
             settings.get("port", 80)))
    import asyncio
    asyncio.run(controller.main())
