# A compact validator for JSON-shaped data (a small subset of JSON Schema, as plain dicts).
#
# Schema keys: "type" (obj, int, num, bool, str, list), "props" (obj: name -> schema),
# "required" (names), "values" (obj: schema for every value of an open mapping),
# "items" (list), "enum", "min", "max", "gt" (exclusive minimum), "min_len", "max_len"
# (list items or str characters), "pattern" (str: a regular expression it must match),
# "default", "null" (None allowed). Unknown keys of an obj with "props" are rejected.
# The same words as JSON Schema's, shorter: tests/test_config_schema_matches_fleet.py maps one
# onto the other.
# validate() returns a new value with defaults filled in, or raises SchemaError naming the path.


class SchemaError(ValueError):
    def __init__(self, path, reason):
        super().__init__("%s: %s" % (path or "$", reason))
        self.path = path or "$"
        self.reason = reason


def _is_num(value):
    # bool is an int subclass: never accept it as a number
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_type(kind, value, path):
    if kind == "obj":
        ok = isinstance(value, dict)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "num":
        ok = _is_num(value)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "str":
        ok = isinstance(value, str)
    elif kind == "list":
        ok = isinstance(value, list)
    else:
        raise SchemaError(path, "schema has unknown type " + kind)
    if not ok:
        raise SchemaError(path, "expected " + kind)


def _check_bounds(schema, value, path):
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(path, "must be one of " + ", ".join(str(v) for v in schema["enum"]))
    if "min" in schema and value < schema["min"]:
        raise SchemaError(path, "must be >= %s" % schema["min"])
    if "max" in schema and value > schema["max"]:
        raise SchemaError(path, "must be <= %s" % schema["max"])
    if "gt" in schema and value <= schema["gt"]:
        raise SchemaError(path, "must be > %s" % schema["gt"])
    unit = "characters" if isinstance(value, str) else "items"
    if "min_len" in schema and len(value) < schema["min_len"]:
        raise SchemaError(path, "needs at least %d %s" % (schema["min_len"], unit))
    if "max_len" in schema and len(value) > schema["max_len"]:
        raise SchemaError(path, "allows at most %d %s" % (schema["max_len"], unit))
    if "pattern" in schema:
        import re  # only a schema with a pattern (relay schedules) pays for it

        if not re.match(schema["pattern"], value):
            raise SchemaError(path, "must match " + schema["pattern"])


def _copy_default(value):
    # defaults are shared schema constants: hand out copies so callers may mutate them
    if isinstance(value, dict):
        return {k: _copy_default(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_default(v) for v in value]
    return value


def _join(path, key):
    return "%s.%s" % (path, key) if path else str(key)


def validate(schema, value, path=""):
    if value is None and schema.get("null"):
        return None
    kind = schema.get("type")
    if kind:
        _check_type(kind, value, path)
    _check_bounds(schema, value, path)
    if kind == "obj":
        return _validate_obj(schema, value, path)
    if kind == "list" and "items" in schema:
        items = schema["items"]
        return [validate(items, item, "%s[%d]" % (path, i)) for i, item in enumerate(value)]
    return value


def _validate_obj(schema, value, path):
    out = {}
    props = schema.get("props")
    if props is not None:
        for key in value:
            if key not in props:
                raise SchemaError(_join(path, key), "unknown field")
        for key in schema.get("required", ()):
            if key not in value:
                raise SchemaError(_join(path, key), "required")
        for key, sub in props.items():
            if key in value:
                out[key] = validate(sub, value[key], _join(path, key))
            elif "default" in sub:
                out[key] = _copy_default(sub["default"])
        return out
    values = schema.get("values")
    for key, item in value.items():
        if not isinstance(key, str):
            raise SchemaError(_join(path, key), "keys must be strings")
        out[key] = validate(values, item, _join(path, key)) if values else item
    return out
