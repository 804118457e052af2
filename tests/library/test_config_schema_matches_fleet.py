"""The device's configuration schema (iotlib.config_schema composed with each role's
relays_schema/sensors_schema, read from the unix build) against the fleet's (the pydantic
DeviceConfig and its exported fleet/fleet_server/device_config.schema.json): the same
sections, types, required keys, enums, ranges and patterns, recursively; configs generated
from the fleet's schema accepted by both, and one refused per constraint by both, naming the
same field.

The fleet's JSON Schema is translated into the device's compact words (schema.py) and the
two are compared as data; either side changing alone fails here (see the last tests, which
edit a scratch copy of each side and expect the comparison to find it).
"""
import copy
import importlib.util
import json
import sys

import pytest

from harness.run import ROOT, run_unix

pytestmark = pytest.mark.unix

FLEET_SCHEMA = ROOT / "fleet" / "fleet_server" / "device_config.schema.json"
ROLES = ("relays", "sensors")
_TYPES = {"object": "obj", "integer": "int", "number": "num", "boolean": "bool",
          "string": "str", "array": "list"}
_WORDS = {"minimum": "min", "maximum": "max", "exclusiveMinimum": "gt", "minItems": "min_len",
          "maxItems": "max_len", "minLength": "min_len", "maxLength": "max_len",
          "pattern": "pattern", "enum": "enum", "default": "default"}
# words of the fleet's schema that say nothing the device checks
_PROSE = ("title", "description", "$schema", "$defs")


def _fleet_model():
    """This worktree's fleet/fleet_server/device_config.py (not an installed copy)."""
    path = ROOT / "fleet" / "fleet_server" / "device_config.py"
    spec = importlib.util.spec_from_file_location("worktree_device_config", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the annotations through it
    spec.loader.exec_module(module)
    return module


def to_compact(node, defs):
    """The fleet's JSON Schema node in the device's schema words (schema.py)."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[1]]
        node = dict(target, **node)
    if "anyOf" in node:  # Optional[X]: X or null
        options = node.pop("anyOf")
        real = [o for o in options if o.get("type") != "null"]
        assert len(real) == 1 and len(options) == 2, "only Optional[X] unions are expected"
        out = to_compact(dict(real[0], **node), defs)
        out["null"] = True
        return out
    out = {}
    for key, value in node.items():
        if key in _PROSE:
            continue
        if key == "type":
            out["type"] = _TYPES[value]
        elif key == "properties":
            out["props"] = {k: to_compact(v, defs) for k, v in value.items()}
        elif key == "additionalProperties":
            if value is False:
                assert "properties" in node, "a closed object names its properties"
            else:
                out["values"] = to_compact(value, defs)
        elif key == "items":
            out["items"] = to_compact(value, defs)
        elif key == "required":
            out["required"] = sorted(value)
        elif key in _WORDS:
            out[_WORDS[key]] = value
        else:
            raise AssertionError("the fleet's schema uses %r, which the device's cannot say" % key)
    return out


def fleet_compact(schema):
    return to_compact(schema, schema.get("$defs", {}))


def normalised(device):
    """The device's schema as data comparable with to_compact's: required sorted."""
    out = {}
    for key, value in device.items():
        if key == "props":
            value = {k: normalised(v) for k, v in value.items()}
        elif key in ("values", "items"):
            value = normalised(value)
        elif key == "required":
            value = sorted(value)
        out[key] = value
    return out


def differences(fleet, device, path="$"):
    """Where the two compact schemas disagree. A default the fleet publishes must be the
    device's; where the fleet's JSON has none (default_factory: filled in on the device, the
    fleet stores what was written) the device may have its own."""
    out = []
    for key in sorted(set(fleet) | set(device)):
        where = "%s.%s" % (path, key)
        if key == "default" and key not in fleet:
            continue
        if key not in fleet or key not in device:
            out.append("%s: fleet %r, device %r" % (where, fleet.get(key), device.get(key)))
        elif key == "props":
            for name in sorted(set(fleet[key]) | set(device[key])):
                if name not in fleet[key] or name not in device[key]:
                    out.append("%s.%s: only on the %s side" % (
                        where, name, "fleet" if name in fleet[key] else "device"))
                else:
                    out += differences(fleet[key][name], device[key][name], where + "." + name)
        elif key in ("values", "items"):
            out += differences(fleet[key], device[key], where)
        elif fleet[key] != device[key]:
            out.append("%s: fleet %r, device %r" % (where, fleet[key], device[key]))
    return out


@pytest.fixture(scope="module")
def device_schemas():
    """{None: core only, role: core + the role's sections} as the unix build composes them."""
    out = run_unix("""
import json
from iotlib.config_schema import composed
for roles in ((), ("relays",), ("sensors",)):
    print(json.dumps([roles[0] if roles else None, composed(roles)[0]]))
""")
    return {role: schema for role, schema in (json.loads(line) for line in out.splitlines())}


@pytest.fixture(scope="module")
def fleet_schema():
    exported = json.loads(FLEET_SCHEMA.read_text())
    assert exported == json.loads(json.dumps(_fleet_model().json_schema())), \
        "device_config.schema.json is not what the model exports: regenerate it"
    return fleet_compact(exported)


def _role_sections(device_schemas, role):
    core = set(device_schemas[None]["props"])
    return set(device_schemas[role]["props"]) - core


def test_sections_are_the_core_and_each_roles_own(device_schemas, fleet_schema):
    core = set(device_schemas[None]["props"])
    owned = {role: _role_sections(device_schemas, role) for role in ROLES}
    assert core and all(owned.values())
    assert not owned["relays"] & owned["sensors"], "a section belongs to one role"
    for role in ROLES:  # composing adds the role's sections and keeps the core's
        assert core <= set(device_schemas[role]["props"])
    assert core | owned["relays"] | owned["sensors"] == set(fleet_schema["props"])
    assert owned == {"relays": {"relays", "interlocks"}, "sensors": {"sensors"}}


@pytest.mark.parametrize("role", ROLES)
def test_device_schema_agrees_with_the_fleets(device_schemas, fleet_schema, role):
    device = normalised(device_schemas[role])
    fleet = dict(fleet_schema)
    fleet["props"] = {k: v for k, v in fleet_schema["props"].items() if k in device["props"]}
    assert differences(fleet, device) == []


# ---- configs generated from the fleet's schema, run through both validators -----------------

TIMES = {"on": "06:00", "off": "18:30:15"}  # values the TimeOfDay pattern accepts, on != off
NAMES = ("a", "b")  # keys of every open map; interlocks name them


def valid(schema, key=None):
    """A valid value with every optional field present."""
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][-1]
    if kind == "obj":
        if "props" in schema:
            return {k: valid(s, k) for k, s in schema["props"].items()}
        return {name: valid(schema["values"]) for name in NAMES}
    if kind == "list":
        count = min(max(schema.get("min_len", 1), 2), schema.get("max_len", 2))
        items = [valid(schema["items"], key) for _ in range(count)]
        if key == "interlocks":
            items = [list(NAMES)]
        return items
    if kind == "str":
        return TIMES.get(key, NAMES[0] if schema.get("min_len") else "text")
    if kind == "bool":
        return True
    low = schema.get("min", schema.get("gt", 0) + 1)
    return min(low, schema.get("max", low)) if kind == "int" else min(low + 0.5, schema.get("max", 1e9))


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()


def _wrong_type(kind):
    return {"obj": [], "list": {}, "str": 5, "int": "5", "num": "5", "bool": 1}[kind]


def mutations(schema, path=()):
    """(what, path, value) that breaks one constraint of `schema` at `path` each."""
    kind = schema.get("type")
    out = [("type", path, _wrong_type(kind))] if path else []
    if "enum" in schema:
        out.append(("enum", path, "NOT_" + str(schema["enum"][0])))
    if "min" in schema:
        out.append(("min", path, schema["min"] - 1))
    if "max" in schema:
        out.append(("max", path, schema["max"] + 1))
    if "gt" in schema:
        out.append(("gt", path, schema["gt"]))
    if "pattern" in schema:
        out.append(("pattern", path, "24:00"))
    if kind == "str" and schema.get("min_len"):
        out.append(("min_len", path, ""))
    if kind == "list":
        item = valid(schema["items"], path[-1] if path else None)
        if "min_len" in schema:
            out.append(("min_len", path, [item] * (schema["min_len"] - 1)))
        if "max_len" in schema:
            out.append(("max_len", path, [item] * (schema["max_len"] + 1)))
        out += mutations(schema["items"], path + (0,))
    if kind == "obj" and "props" in schema:
        out.append(("unknown field", path + ("bogus",), 1))
        for key in schema.get("required", ()):
            out.append(("required", path + (key,), _DELETE))
        for key, sub in schema["props"].items():
            out += mutations(sub, path + (key,))
    elif kind == "obj":
        out += mutations(schema["values"], path + (NAMES[0],))
    return out


def path_text(path):
    text = ""
    for part in path:
        text += "[%d]" % part if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def fleet_refusal(model, config):
    """None when the fleet accepts `config`, else the field paths of its errors."""
    from pydantic import ValidationError
    try:
        model.validate_config(config)
    except ValidationError as e:
        paths = []
        for err in e.errors():
            where = path_text(err["loc"])
            msg = err["msg"].split(", ", 1)[-1]
            if msg.startswith("[") and "names unknown relay" in msg:  # interlocks' own rule
                where += msg.split(" ", 1)[0]
            paths.append(where)
        return paths
    return None


def device_verdicts(cases, tmp_path):
    """[(role, config)] through validator(role) on the unix build: "ok" or the error path."""
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    out = run_unix("""
import json
from iotlib.config_schema import validator
from iotlib.schema import SchemaError
for role, config in json.load(open("cases.json")):
    try:
        validator(role)(config)
        print("ok")
    except SchemaError as e:
        print(e.path)
""", cwd=str(tmp_path))
    return out.splitlines()


def _cases(fleet_schema, device_schemas):
    """(role, what, path, config, expected path or None for a valid one)."""
    cases = []
    for role in ROLES:
        props = {k: v for k, v in fleet_schema["props"].items()
                 if k in device_schemas[role]["props"]}
        schema = dict(fleet_schema, props=props)
        full = valid(schema)
        cases.append((role, "full", (), full, None))
        cases.append((role, "empty", (), {}, None))
        for key, sub in props.items():
            if sub.get("null"):
                cases.append((role, "null", (key,), dict(full, **{key: None}), None))
        for what, path, value in mutations(schema):
            config = copy.deepcopy(full)
            _set(config, path, value)
            cases.append((role, what, path, config, path_text(path)))
        # the rules across fields, which both sides check in code
        config = copy.deepcopy(full) if role == "relays" else None
        if config is not None:
            config["interlocks"] = [["a", "nope"]]
            cases.append((role, "interlock names a relay", (), config, "interlocks[0][1]"))
            config = copy.deepcopy(full)
            config["relays"]["a"]["schedule"] = [{"on": "06:00", "off": "06:00:00"}]
            cases.append((role, "on != off", (), config, "relays.a.schedule[0].off"))
    return cases


def test_generated_configs_get_the_same_verdict_from_both(fleet_schema, device_schemas,
                                                          tmp_path):
    model = _fleet_model()
    cases = _cases(fleet_schema, device_schemas)
    assert len(cases) > 60  # every constraint of both roles' configs
    verdicts = device_verdicts([(role, config) for role, _, _, config, _ in cases], tmp_path)
    assert len(verdicts) == len(cases)
    wrong = []
    for (role, what, path, config, expected), device in zip(cases, verdicts):
        fleet = fleet_refusal(model, config)
        if expected is None:
            if fleet is not None or device != "ok":
                wrong.append("%s %s: valid, but fleet %s, device %s" % (role, what, fleet, device))
        elif fleet != [expected] or device != expected:
            wrong.append("%s %s at %s: fleet refused at %s, device at %s"
                         % (role, what, expected, fleet, device))
    assert wrong == [], "\n".join(wrong)


def test_a_section_of_the_other_role_is_refused(tmp_path):
    verdicts = device_verdicts([("relays", {"sensors": None}),
                                ("sensors", {"relays": {}}),
                                ("sensors", {"interlocks": []})], tmp_path)
    assert verdicts == ["sensors", "relays", "interlocks"]


# ---- the comparison fails when either side changes alone ------------------------------------

def test_a_fleet_side_change_alone_is_found(device_schemas):
    scratch = json.loads(FLEET_SCHEMA.read_text())
    scratch["$defs"]["Relay"]["properties"]["pin"]["maximum"] = 29
    scratch["properties"]["log_level"]["enum"].append("TRACE")
    scratch["$defs"]["Sensors"]["required"] = []
    fleet = fleet_compact(scratch)
    found = []
    for role in ROLES:
        device = normalised(device_schemas[role])
        part = dict(fleet, props={k: v for k, v in fleet["props"].items() if k in device["props"]})
        found += differences(part, device)
    assert "$.props.relays.values.props.pin.max: fleet 29, device 28" in found
    assert any(line.startswith("$.props.log_level.enum:") for line in found)
    assert "$.props.sensors.required: fleet [], device ['fields']" in found


def test_a_device_side_change_alone_is_found(device_schemas, fleet_schema):
    scratch = copy.deepcopy(device_schemas["sensors"])
    field = scratch["props"]["sensors"]["props"]["fields"]["values"]
    field["props"]["rate_hz"]["max"] = 500
    del field["props"]["threshold_low"]
    scratch["props"]["heartbeat_s"]["default"] = 60
    device = normalised(scratch)
    fleet = dict(fleet_schema, props={k: v for k, v in fleet_schema["props"].items()
                                      if k in device["props"]})
    found = differences(fleet, device)
    assert "$.props.sensors.props.fields.values.props.rate_hz.max: fleet 1000, device 500" in found
    assert any("threshold_low: only on the fleet side" in line for line in found)
    assert "$.props.heartbeat_s.default: fleet 30, device 60" in found


def test_the_sims_configs_pass_the_devices_validator(tmp_path):
    """firmware/sim.py checks its devices' configs with the fleet's model at import; the
    devices running them accept them too."""
    spec = importlib.util.spec_from_file_location("sim_for_schema", ROOT / "firmware" / "sim.py")
    sim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sim)
    assert device_verdicts([("relays", sim.RELAYS_CONFIG), ("sensors", sim.SENSORS_CONFIG)],
                           tmp_path) == ["ok", "ok"]
    assert device_verdicts([("relays", sim.SENSORS_CONFIG)], tmp_path) == ["sensors"]
