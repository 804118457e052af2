# Decide what the device runs at boot: the user's /main.py, the variant's role, or the REPL.
#
# The role comes from the image's variant (RELAYS/SENSORS); the unix simulation (variant
# SIM) takes it from device.json's "role". device.json (in the current directory: / on
# the device, the device's folder in simulation) holds the provisioning:
#   {"device_id", "device_key", "api_key", "tenant", "namespace", "role",
#    "service_discovery_url", "host", "port", "wifi_ssid", "wifi_password"}
# The configuration (relays, sensors, rbac, ...) comes from the fleet's config service once
# the device has registered (iotlib.device); any controller argument given here is the
# starting point until then (see the controllers' docs).
# device.json is checked before anything starts (iotlib.device_settings): bad JSON, an
# unknown key or a wrong type is printed, one "device.json: field: what" line each, and the
# device stays at the REPL with the file untouched.
import json

from iotlib.buildinfo import build_info
from iotlib.storage import exists

PROVISIONING_FILE = "device.json"
ROLES = ("relays", "sensors")


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


def load_settings(path=PROVISIONING_FILE, role=None, image_role=None):
    """device.json as a dict, checked (iotlib.device_settings: every key known, types);
    ValueError lists what is wrong with it, one "device.json: field: what" line each."""
    try:
        with open(path) as f:
            text = f.read()
        settings = json.loads(text)
    except OSError as e:
        raise ValueError("%s: cannot be read (%s)" % (path, e))
    except ValueError as e:
        raise ValueError("%s: not valid JSON (%s)" % (path, e))
    # MicroPython's json closes an object at the end of the text: a file cut short by an
    # interrupted write would parse as the keys before the cut
    if isinstance(settings, dict) and not text.rstrip().endswith("}"):
        raise ValueError("%s: not valid JSON (cut short: no closing })" % path)
    if not isinstance(settings, dict):
        raise ValueError("%s: must be a JSON object {...}, not %s" % (path, _json_kind(settings)))
    if role is None and settings.get("role") in ROLES:
        role = settings["role"]
    problems = _check_settings(settings, role, image_role)
    if problems:
        raise ValueError("\n".join("%s: %s" % (path, p) for p in problems))
    return settings


def _json_kind(value):
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else str(value).lower()


def _check_settings(settings, role, image_role):
    """iotlib.device_settings.problems(), with the checker on the heap for this call only."""
    from iotlib.device_settings import problems_once
    return problems_once(settings, role, image_role)


def build_device(settings, controller_class, early, version="0.0.0"):
    """The whole device (iotlib.device.Device): core and fleet managers, the controller."""
    from iotlib.device import Device
    return Device(settings, controller_class, early, version)


def prepare():
    """Everything run() does before serving: the Device (or None when there is nothing to
    run: a user main.py, not provisioned, an unknown role)."""
    info = build_info()
    if exists("main.py"):  # the filesystem's own main.py, when a user installed one
        exec(open("main.py").read(), {"__name__": "__main__"})
        return None
    variant = info["variant"]
    if variant not in ("RELAYS", "SENSORS", "SIM", "NONE"):
        return None
    if not exists(PROVISIONING_FILE):
        print("iotlib %s (%s): not provisioned, no /%s; staying at the REPL"
              % (info["version"], variant, PROVISIONING_FILE))
        return None
    image_role = variant.lower() if variant in ("RELAYS", "SENSORS") else None
    try:
        settings = load_settings(role=image_role, image_role=image_role)
    except ValueError as e:  # a readable refusal, never a traceback; the file stays as it is
        lines = str(e).split("\n")
        print("iotlib %s (%s): %s is not valid (%d problem%s):"
              % (info["version"], variant, PROVISIONING_FILE, len(lines),
                 "" if len(lines) == 1 else "s"))
        for line in lines:
            print("  " + line)
        print("iotlib %s (%s): staying at the REPL; %s is left as it is: fix it and reset"
              % (info["version"], variant, PROVISIONING_FILE))
        return None
    # before any application import: an installed OTA bundle goes first on sys.path.
    # The hardware is chosen here, once (iotlib.hal), and handed to every manager.
    from iotlib import hal
    from iotlib.device import boot_early
    early = boot_early(settings, hal.load())
    if early[3].boot_mode() == "safe":  # the image never confirmed: no role code at all
        from iotlib.safe_mode import SafeModeController
        controller_class = SafeModeController
        print("iotlib %s: SAFE MODE (image never confirmed): network, health and OTA only"
              % info["version"])
    else:
        controller_class = role_for_variant(variant)
    if controller_class is None:  # simulation: the provisioning names the role
        controller_class = role_for_name(settings.get("role"))
        if controller_class is None:
            print("iotlib: %s: role must be one of %s" % (PROVISIONING_FILE, ", ".join(ROLES)))
            return None
    if not settings.get("role"):
        settings["role"] = ROLES[0] if variant == "RELAYS" else ROLES[1]
    device = build_device(settings, controller_class, early, info["version"])
    print("iotlib %s: starting %s %s on port %s (discovery %s)"
          % (info["version"], controller_class.__name__, settings["device_id"],
             settings.get("port", 80), settings.get("service_discovery_url")))
    return device


def run():
    device = prepare()
    if device is not None:
        import asyncio
        asyncio.run(device.main())
