# The device configuration schema, mirrored from the fleet's device_config.schema.json.
from iotlib.schema import SchemaError, validate

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

DEFAULT_ROLES = {
    "admin": ["relays:read", "relays:write", "sensors:read", "ota:admin", "state:write",
              "alarms:read"],
    "operator": ["relays:read", "relays:write", "sensors:read"],
    "viewer": ["relays:read", "sensors:read"],
}

_STR = {"type": "str"}
_NUM = {"type": "num"}

RELAY = {"type": "obj", "required": ("pin",), "props": {
    "pin": {"type": "int", "min": 0, "max": 28},
    "active_low": {"type": "bool", "default": False},
    "safe_state": {"type": "str", "enum": ("LOW", "HIGH"), "default": "LOW"},
    "max_on_s": {"type": "int", "min": 0, "default": 0},
    # daily on/off windows, "HH:MM[:SS]" UTC; relays_controller.relay_table reads the times
    "schedule": {"type": "list", "max_len": 4, "items": {
        "type": "obj", "required": ("on", "off"), "props": {"on": _STR, "off": _STR}}},
}}

SENSOR_FIELD = {"type": "obj", "required": ("source", "rate_hz"), "props": {
    "source": {"type": "str", "enum": ("adc0", "adc1", "adc2", "adc3", "temp", "sim")},
    "rate_hz": {"type": "num", "gt": 0, "max": 1000},
    "threshold_high": {"type": "num", "null": True, "default": None},
    "threshold_low": {"type": "num", "null": True, "default": None},
}}

DEVICE_CONFIG = {"type": "obj", "props": {
    "log_level": {"type": "str", "enum": LOG_LEVELS, "default": "INFO"},
    "heartbeat_s": {"type": "int", "min": 5, "max": 3600, "default": 30},
    "enabled_components": {"type": "obj", "values": {"type": "bool"}, "default": {}},
    "ntp_servers": {"type": "list", "items": _STR, "default": []},
    "rbac": {"type": "obj", "default": {"roles": DEFAULT_ROLES}, "props": {
        "roles": {"type": "obj", "values": {"type": "list", "items": _STR},
                  "default": DEFAULT_ROLES},
    }},
    "rate_limit": {"type": "obj", "null": True, "default": None,
                   "required": ("per_token_rps", "per_address_rps", "burst"), "props": {
                       "per_token_rps": {"type": "num", "gt": 0},
                       "per_address_rps": {"type": "num", "gt": 0},
                       "burst": {"type": "int", "min": 1},
                   }},
    "relays": {"type": "obj", "values": RELAY, "default": {}},
    "interlocks": {"type": "list", "default": [], "items": {
        "type": "list", "min_len": 2, "max_len": 2, "items": {"type": "str"}}},
    "sensors": {"type": "obj", "null": True, "default": None, "required": ("fields",), "props": {
        "fields": {"type": "obj", "values": SENSOR_FIELD},
        "max_clients": {"type": "int", "min": 1, "max": 16, "default": 4},
    }},
    "mask_fields": {"type": "list", "items": _STR, "default": []},
}}


def validate_device_config(config):
    """Return the config with defaults filled in, or raise SchemaError naming the field path."""
    config = validate(DEVICE_CONFIG, config)
    # cross-field rule JSON Schema cannot express: interlocks name known relays
    for i, pair in enumerate(config["interlocks"]):
        for j, name in enumerate(pair):
            if not name:
                raise SchemaError("interlocks[%d][%d]" % (i, j), "must not be empty")
            if name not in config["relays"]:
                raise SchemaError("interlocks[%d][%d]" % (i, j), "unknown relay " + name)
    return config
