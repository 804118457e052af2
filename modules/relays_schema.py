# The relays role's sections of the device configuration: "relays" (each relay, with its
# daily "schedule" windows) and "interlocks", as iotlib.schema dicts, plus what a schema
# cannot say (check). The fleet's Relay/ScheduleWindow/interlocks say the same;
# tests/test_config_schema_matches_fleet.py compares them. Imported only while a config or
# device.json is checked (iotlib.config_schema.role_schema), then dropped.
from iotlib.schema import SchemaError

# "HH:MM" or "HH:MM:SS", UTC (the fleet's TimeOfDay)
TIME_OF_DAY = "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


def relay():
    time = {"type": "str", "pattern": TIME_OF_DAY}
    return {"type": "obj", "required": ("pin",), "props": {
        "pin": {"type": "int", "min": 0, "max": 28},
        "active_low": {"type": "bool", "default": False},
        "safe_state": {"type": "str", "enum": ("LOW", "HIGH"), "default": "LOW"},
        "max_on_s": {"type": "int", "min": 0, "default": 0},
        "schedule": {"type": "list", "max_len": 4, "items": {
            "type": "obj", "required": ("on", "off"), "props": {"on": time, "off": time}}},
    }}


def sections():
    return {
        "relays": {"type": "obj", "values": relay(), "default": {}},
        "interlocks": {"type": "list", "default": [], "items": {
            "type": "list", "min_len": 2, "max_len": 2,
            "items": {"type": "str", "min_len": 1}}},
    }


def check(config):
    """The rules across fields: interlocks name configured relays; a window's on and off
    differ. SchemaError names the field, as the fleet's validators do."""
    relays = config.get("relays") or {}
    for i, pair in enumerate(config.get("interlocks") or ()):
        for j, name in enumerate(pair):
            if name not in relays:
                raise SchemaError("interlocks[%d][%d]" % (i, j), "unknown relay " + name)
    for name, spec in relays.items():
        for i, window in enumerate(spec.get("schedule") or ()):
            if _seconds(window["on"]) == _seconds(window["off"]):
                raise SchemaError("relays.%s.schedule[%d].off" % (name, i),
                                  "on and off must differ")


def _seconds(text):  # a TIME_OF_DAY the schema has let through
    return int(text[:2]) * 3600 + int(text[3:5]) * 60 + int(text[6:] or "0")
