# device.json checked at boot, before anything starts: every key the device itself or the
# role's controller reads is known here with its type; anything else is refused by name
# (with a "did you mean" hint), where it used to reach the controller as a keyword and
# crash the boot with a TypeError.
#
#   problems(settings, role)  ->  ["wifi_sid: unknown key (did you mean wifi_ssid?)", ...]
#
# iot_boot imports this module for that one call and drops it from sys.modules again: the
# tables are strings (frozen: in flash), so nothing of it stays on the heap. The nested
# sections that have the same shape as the fleet's configuration (relays, fields, rate_limit,
# interlocks, rbac) are checked against the configuration's own schema: the core's
# (iotlib.config_schema) or the role's (relays_schema, sensors_schema), the ones the config
# manager validates with.
#
# Keep in step with: Device (DEVICE_KEYS and every settings.get), iotlib.fleet_tls, the
# controllers' keywords (RelaysController, SensorsController, RoleController) and
# docs/roles.md "device.json". tests/test_device_json.py compares them.

# "name:type"; types: S required non-empty string, s string, i integer, n number, b boolean,
# p port, L list of strings, H the `http` section (keys below), the rest nested schemas:
# Y relays, P relay_pins, I interlocks, F fields, T rate_limit, R rbac.
# Optional keys may be null (the same as absent).
DEVICE = ("device_id:S api_key:S device_key:s tenant:s namespace:s role:s "
          "service_discovery_url:s host:s port:p wifi_ssid:s wifi_password:s "
          "config_poll_s:n state_poll_s:n use_wdt:b max_missed:i ntp_servers:L ntp_retry_s:n "
          "max_token_lifetime_s:i http_client_max_body:i mask_fields:L rbac:R "
          "fleet_ca_file:s fleet_client_cert_file:s fleet_client_key_file:s "
          "fleet_tls_insecure_skip_verify:b rate_limit:T http:H restore_desired:b "
          "clock_drift_alarm_s:n")
ROLES = ("relays", "relays:Y relay_pins:P interlocks:I allowed_mask:i",
         "sensors", "fields:F max_clients:i queue_size:i client_rps:n client_burst:i "
                    "ping_s:n pong_timeout_s:n ws_sndbuf:i report_s:n")
# the `http` section: iotlib.http_server.ConnectionLimits
HTTP = ("max_connections:i backlog:i idle_s:n head_s:n body_s:n write_s:n max_line:i "
        "max_path:i max_head:i max_body:i")
_EXPECTED = {"S": "a non-empty string", "s": "a string", "i": "an integer", "n": "a number",
             "b": "true or false", "p": "a port number 0..65535", "L": "a list of strings",
             "H": "an object"}


def _table(text):
    return [item.split(":") for item in text.split()]


def known_keys(role=None):
    """Every key device.json may hold for `role` (None: either role)."""
    keys = [k for k, _ in _table(DEVICE)]
    for i in range(0, len(ROLES), 2):
        if role is None or role == ROLES[i]:
            keys += [k for k, _ in _table(ROLES[i + 1])]
    return keys


def _what(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _type_ok(kind, value):
    if kind in "Ss":
        return isinstance(value, str) and (kind == "s" or value != "")
    if isinstance(value, bool):
        return kind == "b"
    if kind == "i":
        return isinstance(value, int)
    if kind == "n":
        return isinstance(value, (int, float))
    if kind == "p":
        return isinstance(value, int) and 0 <= value <= 65535
    if kind == "L":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, dict)


def _nested(kind, value, path):
    """A section with the fleet configuration's shape, checked by its schema (the core's or
    the role's, iotlib.config_schema); None or "path: reason"."""
    from iotlib.schema import SchemaError, validate
    from iotlib.config_schema import core_sections, role_schema
    if kind in "YIP":
        sections = role_schema("relays").sections()
        if kind == "P":  # the short form {name: pin}
            schema = {"type": "obj", "values": sections["relays"]["values"]["props"]["pin"]}
        else:
            schema = sections["relays" if kind == "Y" else "interlocks"]
    elif kind == "F":
        schema = role_schema("sensors").fields()
    else:  # rate_limit, rbac: as in the configuration
        schema = core_sections()["rate_limit" if kind == "T" else "rbac"]
    try:
        validate(schema, value, path)
    except SchemaError as e:
        return str(e)
    return None


def _distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1]
        for j, cb in enumerate(b):
            cur.append(min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (ca != cb)))
        prev = cur
    return prev[-1]


def _hint(name, keys):
    """The known key `name` was most likely meant to be, or None."""
    best, best_d = None, min(2, len(name) // 3 + 1)
    for key in keys:
        d = _distance(name, key)
        if d <= best_d and (best is None or d < best_d):
            best, best_d = key, d
    if best is None and len(name) >= 4:  # "ssid" for wifi_ssid, "relay_pin" for relay_pins
        for key in keys:
            if name in key or key in name:
                return key
    return best


def _unknown(path, name, keys):
    hint = _hint(name, keys)
    return "%s: unknown key%s" % (path, " (did you mean %s?)" % hint if hint else "")


def _check(table, settings, path, out, other=None):
    types = dict(table)
    for key in settings:
        where = path + key
        kind = types.get(key)
        if kind is None:
            if other and key in other[1]:
                out.append("%s: a key of the %s role, this device runs %s" % (
                    where, other[0], other[2]))
            else:
                out.append(_unknown(where, key, list(types)))
            continue
        value = settings[key]
        if value is None and kind != "S":
            continue  # null is the same as absent
        if kind in _EXPECTED:
            if value == "" and kind == "S":
                out.append("%s: must not be empty" % where)
            elif not _type_ok(kind, value):
                out.append("%s: expected %s, got %s" % (where, _EXPECTED[kind],
                                                              _what(value)))
            elif kind == "H":
                _check(_table(HTTP), value, where + ".", out)
        else:
            problem = _nested(kind, value, where)
            if problem:
                out.append(problem)
    for key, kind in table:
        if kind == "S" and key not in settings:
            out.append("%s%s: missing (required)" % (path, key))


def problems(settings, role=None, image_role=None, optional=()):
    """What is wrong with device.json's `settings` (a dict): a list of "field.path: what"
    strings, empty when it is valid. `role` is the role this boot runs (None when not known:
    the keys of either role are accepted); `image_role` the one the image is built for
    (rp2 variants), which device.json's "role" must not contradict. Keys in `optional` are
    not required (a controller built the seed's way has no api_key: registration fetches it)."""
    table = [(k, "s" if k in optional else t) for k, t in _table(DEVICE)]
    other = None
    for i in range(0, len(ROLES), 2):
        if role is None or role == ROLES[i]:
            table += _table(ROLES[i + 1])
        else:
            other = (ROLES[i], [k for k, _ in _table(ROLES[i + 1])], role)
    out = []
    _check(table, settings, "", out, other)
    named = settings.get("role")
    if image_role and isinstance(named, str) and named and named != image_role:
        out.append("role: %s, but this image runs the %s role" % (named, image_role))
    if role == "sensors":  # what SensorsController would raise ValueError for
        ping, pong = settings.get("ping_s"), settings.get("pong_timeout_s")
        ping = 20 if ping is None else ping
        pong = 10 if pong is None else pong
        if _type_ok("n", ping) and _type_ok("n", pong) and ping and not 0 < pong <= ping:
            out.append("pong_timeout_s: must be > 0 and <= ping_s (%s)" % ping)
    out.sort()  # by field (a dict from json has no order of its own here)
    return out


def problems_once(settings, role=None, image_role=None, optional=()):
    """problems(), after which this module leaves sys.modules and the iotlib package so gc
    reclaims it: the checker runs once, at start (iot_boot, a standalone controller)."""
    import sys
    import iotlib
    try:
        return problems(settings, role, image_role, optional)
    finally:
        sys.modules.pop("iotlib.device_settings", None)
        try:
            delattr(iotlib, "device_settings")
        except AttributeError:
            pass
