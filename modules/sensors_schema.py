# The sensors role's section of the device configuration: "sensors" (its fields, each with
# its source, rate and thresholds, and the stream's client limit), as iotlib.schema dicts.
# The fleet's Sensors/SensorField say the same; tests/test_config_schema_matches_fleet.py
# compares them. Imported only while a config or device.json is checked
# (iotlib.config_schema.role_schema), then dropped.

SOURCES = ("adc0", "adc1", "adc2", "adc3", "temp", "sim")


def field():
    return {"type": "obj", "required": ("source", "rate_hz"), "props": {
        "source": {"type": "str", "enum": SOURCES},
        "rate_hz": {"type": "num", "gt": 0, "max": 1000},
        "threshold_high": {"type": "num", "null": True, "default": None},
        "threshold_low": {"type": "num", "null": True, "default": None},
    }}


def fields():
    return {"type": "obj", "values": field()}


def sections():
    return {
        "sensors": {"type": "obj", "null": True, "default": None, "required": ("fields",),
                    "props": {
                        "fields": fields(),
                        "max_clients": {"type": "int", "min": 1, "max": 16, "default": 4},
                    }},
    }
