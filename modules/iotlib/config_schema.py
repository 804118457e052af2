# The device configuration schema, composed: the core sections every device reads (here) and
# the running role's own sections (relays_schema.py, sensors_schema.py next to the role's
# controller). Together they mirror the fleet's DeviceConfig
# (fleet/fleet_server/device_config.schema.json); tests/test_config_schema_matches_fleet.py
# compares them.
#
# The schema dicts are built for each validation and dropped after it, and the role's schema
# module is imported for that call only: between configs none of it is on the heap.
import sys

from iotlib.schema import validate

DEFAULT_ROLES = {
    "admin": ["relays:read", "relays:write", "sensors:read", "ota:admin", "state:write",
              "alarms:read"],
    "operator": ["relays:read", "relays:write", "sensors:read"],
    "viewer": ["relays:read", "sensors:read"],
}


def core_sections():
    """{section: schema} of what is not a role's: logging, auth, heartbeats, time, components."""
    text = {"type": "str"}
    return {
        "log_level": {"type": "str", "enum": ("DEBUG", "INFO", "WARNING", "ERROR"),
                      "default": "INFO"},
        "heartbeat_s": {"type": "int", "min": 5, "max": 3600, "default": 30},
        "enabled_components": {"type": "obj", "values": {"type": "bool"}, "default": {}},
        "ntp_servers": {"type": "list", "items": text, "default": []},
        "rbac": {"type": "obj", "default": {"roles": DEFAULT_ROLES}, "props": {
            "roles": {"type": "obj", "values": {"type": "list", "items": text},
                      "default": DEFAULT_ROLES},
        }},
        "rate_limit": {"type": "obj", "null": True, "default": None,
                       "required": ("per_token_rps", "per_address_rps", "burst"), "props": {
                           "per_token_rps": {"type": "num", "gt": 0},
                           "per_address_rps": {"type": "num", "gt": 0},
                           "burst": {"type": "int", "min": 1},
                       }},
        "mask_fields": {"type": "list", "items": text, "default": []},
    }


def role_schema(role):
    """The role's schema module (`<role>_schema`: sections(), optional check(config)),
    imported for the caller only: it leaves sys.modules again so gc can take it."""
    name = role + "_schema"
    try:
        return __import__(name)
    finally:
        sys.modules.pop(name, None)


def composed(roles=()):
    """(schema, checks): the whole config's schema for these roles, and their cross-field
    checks (what a schema cannot say, such as interlocks naming known relays)."""
    props = core_sections()
    checks = []
    for role in roles:
        module = role_schema(role)
        props.update(module.sections())
        check = getattr(module, "check", None)
        if check is not None:
            checks.append(check)
    return {"type": "obj", "props": props}, checks


def validator(*roles):
    """validate(config) for ConfigManager: core + these roles' sections (Device passes the
    running role's). Returns the config with defaults filled in, or raises SchemaError
    naming the field path."""
    def validate_config(config):
        schema, checks = composed(roles)
        config = validate(schema, config)
        for check in checks:
            check(config)
        return config

    return validate_config
