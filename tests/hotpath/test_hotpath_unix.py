"""The hot-path C module (_iotlib) and its wrappers on the unix simulation build.

Each case runs in our unix binary over the simulated backend: the relay bank's output
register, ADC channels set or fed from the test, JSON lines parsed here by CPython.
"""
import ast
import json

import pytest

from harness.run import MicroPythonError, run_unix
from harness.scripts import device_script

pytestmark = pytest.mark.unix

RELAYS = """
import _iotlib
from iotlib.relay_bank import RelayBank, InterlockError
PINS = {"pump": 2, "fan": 3, "heater": 4, "valve": 5}
def bank(native):
    return RelayBank(PINS, active_low=("heater",), interlocks=(("pump", "heater"),),
                     native=native)
"""


def mp_eval(code, **kw):
    """Run code whose last line prints a Python literal; return that value."""
    return ast.literal_eval(run_unix(code, **kw).strip().splitlines()[-1])


def mp_error(code):
    """Run code that must raise; return (exception type name, message)."""
    out = run_unix("try:\n" + "".join("    %s\n" % l for l in code.strip().splitlines())
                   + "    print('no error')\nexcept Exception as e:\n"
                     "    print(repr((type(e).__name__, str(e))))\n")
    return ast.literal_eval(out.strip().splitlines()[-1])


# ---- relays --------------------------------------------------------------------------

def test_module_is_native_on_the_sim_build():
    assert mp_eval("import iotlib.relay_bank as r, iotlib.adc_sampler as a, "
                   "iotlib.jsonlog as j, _iotlib\n"
                   "print((r.NATIVE, a.NATIVE, j.NATIVE, _iotlib.build_info()['backend']))") \
        == (True, True, True, "sim")


def test_relays_start_off_with_active_low_pins_high():
    reg = mp_eval(RELAYS + "b = bank(True)\nprint(_iotlib.sim_gpio())")
    assert reg & 0b111100 == 1 << 4  # only the active-low heater pin is high


def test_batch_write_changes_requested_pins_in_the_register():
    out = mp_eval(RELAYS + """
b = bank(True)
before = _iotlib.sim_gpio()
b.write({"pump": True, "fan": True, "valve": False})
print((before, _iotlib.sim_gpio(), b.read()))
""")
    before, after, state = out
    assert after ^ before == (1 << 2) | (1 << 3)
    assert state == {"pump": True, "fan": True, "heater": False, "valve": False}


def test_active_low_relay_on_drives_its_pin_low():
    reg, state = mp_eval(RELAYS + """
b = bank(True)
b.write({"heater": True})
print((_iotlib.sim_gpio(), b.read()["heater"]))
""")
    assert not reg & (1 << 4) and state is True


@pytest.mark.parametrize("native", [True, False])
def test_interlock_refuses_and_changes_nothing(native):
    name, msg, reg_same, state = mp_eval(RELAYS + """
b = bank(%s)
b.write({"pump": True, "fan": True})
reg = _iotlib.sim_gpio()
before = b.read()
try:
    b.write({"heater": True, "fan": False})
    r = ("none", "", False, None)
except InterlockError as e:
    r = (type(e).__name__, str(e), _iotlib.sim_gpio() == reg, b.read() == before)
print(r)
""" % native)
    assert name == "InterlockError"
    assert "pump" in msg and "heater" in msg
    assert reg_same and state


def test_interlock_error_is_a_value_error():
    assert mp_eval("from iotlib.relay_bank import InterlockError\n"
                   "print(issubclass(InterlockError, ValueError))") is True


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("pins,expected", [
    ({"r": 23}, "pin 23 not allowed"),   # CYW43 radio
    ({"r": 24}, "pin 24 not allowed"),
    ({"r": 25}, "pin 25 not allowed"),
    ({"r": 29}, "pin 29 not allowed"),
    ({"r": 30}, "pin 30 not allowed"),
    ({"r": -1}, "pin -1 not allowed"),
    ({"a": 3, "b": 3}, "pin 3 used twice"),
])
def test_bad_pin_is_refused(native, pins, expected):
    assert mp_error("from iotlib.relay_bank import RelayBank\nRelayBank(%r, native=%s)"
                    % (pins, native)) == ("ValueError", expected)


@pytest.mark.parametrize("native", [True, False])
def test_allowed_mask_narrows_the_board_mask(native):
    assert mp_error("from iotlib.relay_bank import RelayBank\n"
                    "RelayBank({'r': 5}, allowed_mask=0b1111, native=%s)" % native) \
        == ("ValueError", "pin 5 not allowed")


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("call,expected", [
    ("b.write({'nope': True})", ("ValueError", "unknown relay nope")),
    ("b.write({7: True})", ("ValueError", "unknown relay")),
    ("b.write([('pump', True)])", ("TypeError", "changes must be a dict")),
    ("RelayBank({'a': 1}, active_low=('b',), native=N)", ("ValueError", "unknown relay b")),
    ("RelayBank({'a': 1}, interlocks=(('a', 'b'),), native=N)", ("ValueError", "unknown relay b")),
    ("RelayBank({1: 1}, native=N)", ("TypeError", "relay names must be str")),
    ("RelayBank([1], native=N)", ("TypeError", "pins must be a dict")),
])
def test_bad_relay_inputs(native, call, expected):
    assert mp_error(RELAYS + "N = %s\nb = bank(N)\n%s" % (native, call)) == expected


def test_unknown_relay_in_a_batch_changes_nothing():
    assert mp_eval(RELAYS + """
b = bank(True)
reg = _iotlib.sim_gpio()
try:
    b.write({"pump": True, "nope": True})
except ValueError:
    pass
print(_iotlib.sim_gpio() == reg)
""") is True


@pytest.mark.parametrize("native", [True, False])
def test_all_off_and_apply_safe(native):
    after_safe, after_off, err = mp_eval(RELAYS + """
b = bank(%s)
b.write({"pump": True, "fan": True})
b.apply_safe({"valve": True})
s = b.read()
b.all_off()
try:
    b.apply_safe({"pump": True, "heater": True})
    e = None
except InterlockError:
    e = b.read()
print((s, b.read(), e))
""" % native)
    assert after_safe == {"pump": False, "fan": False, "heater": False, "valve": True}
    assert after_off == dict.fromkeys(after_safe, False)
    assert err == after_off


def test_native_and_fallback_agree_on_a_sequence():
    out = mp_eval(RELAYS + """
seq = [{"pump": True}, {"fan": True, "valve": True}, {"pump": False, "heater": True},
       {"heater": False, "fan": False}]
res = []
for native in (True, False):
    b = bank(native)
    states = []
    for ch in seq:
        b.write(ch)
        states.append(sorted(b.read().items()))
    res.append(states)
print(res)
""")
    assert out[0] == out[1]


# ---- ADC -----------------------------------------------------------------------------

ADC = """
import _iotlib
from array import array
from iotlib.adc_sampler import AdcSampler
"""


def test_burst_returns_set_values_and_stats():
    count, stats, buf = mp_eval(ADC + """
_iotlib.sim_adc_set(0, 1000)
_iotlib.sim_adc_set(2, 4095)
buf = array("H", bytes(2 * 9))
n, st = AdcSampler().burst((0, 2), buf, rate_hz=100000)
print((n, st, list(buf)))
""")
    assert count == 8  # whole rounds only: 4 rounds of 2 channels
    assert buf[:8] == [1000, 4095] * 4 and buf[8] == 0
    assert stats == [(1000, 1000, 1000.0), (4095, 4095, 4095.0)]


@pytest.mark.parametrize("native", [True, False])
def test_burst_of_a_fed_waveform_min_max_mean(native):
    count, stats = mp_eval(ADC + """
_iotlib.sim_adc_feed(1, array("H", [10, 20, 30, 40]))
src = array("H", [10, 20, 30, 40])
pos = [0]
def read(ch):
    v = src[pos[0] %% 4]; pos[0] += 1
    return v
print(AdcSampler(native=%s, read=read).burst([1], array("H", bytes(16)), 50000))
""" % native)
    assert count == 8 and stats == [(10, 40, 25.0)]


def test_fed_waveform_is_masked_to_12_bits_and_cycles():
    assert mp_eval(ADC + """
_iotlib.sim_adc_feed(3, array("H", [0xffff, 5]))
buf = array("H", bytes(10))
AdcSampler().burst((3,), buf)
print(list(buf))
""") == [4095, 5, 4095, 5, 4095]


def test_temperature_channel_reads_27_c_at_0_706_v():
    t = mp_eval(ADC + """
_iotlib.sim_adc_set(4, round(0.706 / 3.3 * 4096))
print(AdcSampler().read_temperature_c())
""")
    assert abs(t - 27.0) < 0.5


@pytest.mark.parametrize("native", [True, False])
@pytest.mark.parametrize("args,expected", [
    ("(), buf", ("ValueError", "need 1-5 channels")),
    ("(0, 1, 2, 3, 4, 4), buf", ("ValueError", "need 1-5 channels")),
    ("(1, 0), buf", ("ValueError", "channels must be ascending, unique, 0-4")),
    ("(1, 1), buf", ("ValueError", "channels must be ascending, unique, 0-4")),
    ("(5,), buf", ("ValueError", "channels must be ascending, unique, 0-4")),
    ("(0,), bytearray(8)", ("TypeError", "buf must be array('H')")),
    ("(0,), array('i', [0, 0])", ("TypeError", "buf must be array('H')")),
    ("(0, 1, 2), array('H', [0, 0])", ("ValueError", "buf holds no full round")),
    ("(0,), buf, 732", ("ValueError", "rate_hz must be 733-500000")),
    ("(0,), buf, 500001", ("ValueError", "rate_hz must be 733-500000")),
])
def test_bad_burst_inputs(native, args, expected):
    assert mp_error(ADC + "buf = array('H', bytes(8))\n"
                    "AdcSampler(native=%s, read=lambda ch: 0).burst(%s)" % (native, args)) \
        == expected


@pytest.mark.parametrize("call,expected", [
    ("_iotlib.sim_adc_set(5, 1)", ("ValueError", "channel must be 0-4")),
    ("_iotlib.sim_adc_set(0, 4096)", ("ValueError", "value must be 0-4095")),
    ("_iotlib.sim_adc_feed(0, array('H'))", ("TypeError", "waveform must be a non-empty array('H')")),
    ("_iotlib.sim_adc_feed(0, array('H', bytes(600)))", ("ValueError", "waveform longer than 256 samples")),
])
def test_bad_sim_hook_inputs(call, expected):
    assert mp_error(ADC + call) == expected


def test_burst_allocation_does_not_grow_with_samples():
    # The samples go into the caller's buffer; the only heap use is the small result.
    small, big = mp_eval(ADC + """
import gc
s = AdcSampler()
def used(n):
    buf = array("H", bytes(2 * n))
    gc.collect(); m = gc.mem_alloc()
    s.burst((0, 4), buf)
    return gc.mem_alloc() - m
print((used(10), used(4000)))
""")
    assert small == big < 400


# ---- JSON log framing ----------------------------------------------------------------

JSON = """
from iotlib.jsonlog import frame_into, py_frame_into
def both(ts, level, msg, fields, mask=()):
    a = bytearray(512); b = bytearray(512)
    na = frame_into(a, ts, level, msg, fields, mask)
    nb = py_frame_into(b, ts, level, msg, fields, mask)
    return bytes(a[:na]), bytes(b[:nb])
"""

RECORDS = [
    ("1700000000", "'info'", "'relay on'", "{'relay': 'pump', 'on': True}", "()"),
    ("12.5", "'warn'", "'x'", "{'token': 'secret', 'user': 'bob'}", "('token', 'password')"),
    ("0", "'error'", "'quote \" back \\\\ slash'", "{}", "()"),
    ("-3", "'debug'", "'ctl \\x00\\x01\\x08\\x0c\\n\\r\\t\\x1f\\x7f end'", "{'k': '\\x1b[0m'}", "()"),
    ("1", "'info'", "'unicode é ü 日本 🙂'", "{'ключ': 'значение', 'emoji': '🙂'}", "()"),
    ("1", "'info'", "'numbers'", "{'i': -42, 'big': 2**80, 'f': 0.1, 'e': 1e-7, 'g': 1e22,"
     " 'z': -0.0, 'n': None, 'f2': False}", "()"),
    ("None", "'info'", "'nan'", "{'nan': float('nan'), 'inf': float('inf'), 'ninf': -float('inf')}",
     "()"),
    ("2", "'info'", "''", "None", "None"),
    ("2", "'info'", "'masked set'", "{'a': 1, 'b': 2}", "{'a'}"),
]


@pytest.mark.parametrize("record", RECORDS, ids=range(len(RECORDS)))
def test_json_line_parses_and_fallback_is_byte_identical(record):
    c_line, py_line, order = mp_eval(JSON + "f = %s\nprint(both(%s, %s, %s, f, %s) + (list(f or {}),))"
                                     % (record[3], record[0], record[1], record[2], record[4]))
    assert c_line == py_line
    assert c_line.endswith(b"\n") and c_line.count(b"\n") == 1
    parsed = json.loads(c_line)
    expected_fields = eval(record[3]) or {}
    mask = eval(record[4]) or ()
    assert list(parsed)[:3] == ["ts", "level", "msg"]
    assert parsed["level"] == eval(record[1]) and parsed["msg"] == eval(record[2])
    for key, value in expected_fields.items():
        if key in mask:
            assert parsed[key] == "***"
        elif isinstance(value, float) and (value != value or value in (float("inf"), -float("inf"))):
            assert parsed[key] is None
        elif isinstance(value, float):
            assert parsed[key] == pytest.approx(value)
        else:
            assert parsed[key] == value
    assert list(parsed)[3:] == order  # MicroPython's own dict iteration order


def test_json_key_order_is_ts_level_msg_then_fields():
    line, order = mp_eval(JSON + "f = {'z': 1, 'a': 2}\nprint((both(5, 'info', 'm', f)[0], list(f)))")
    assert line == b'{"ts":5,"level":"info","msg":"m","%s":%d,"%s":%d}\n' % (
        order[0].encode(), {"z": 1, "a": 2}[order[0]], order[1].encode(), {"z": 1, "a": 2}[order[1]])


def test_json_masking_replaces_the_value_only():
    line = mp_eval(JSON + "print(both(5, 'info', 'm', {'token': 'abc', 'x': 1}, ('token',))[0])")
    assert line == b'{"ts":5,"level":"info","msg":"m","token":"***","x":1}\n'


@pytest.mark.parametrize("impl", ["frame_into", "py_frame_into"])
def test_json_buffer_too_small_is_a_clear_error_and_never_overruns(impl):
    out = mp_eval(JSON + """
full = bytearray(512)
need = %s(full, 1, "info", "hello", {"a": "b"}, ())
backing = bytearray(b"#" * 64)
view = memoryview(backing)[:need - 1]
try:
    %s(view, 1, "info", "hello", {"a": "b"}, ())
    err = None
except ValueError as e:
    err = str(e)
print((need, err, bytes(backing[need - 1:])))
""" % (impl, impl))
    need, err, tail = out
    assert err == "log record needs %d bytes, buffer has %d" % (need, need - 1)
    assert tail == b"#" * (64 - need + 1)  # nothing written past the view's end


def test_json_exact_fit_works():
    assert mp_eval(JSON + """
b = bytearray(46)
print(frame_into(b, 5, "info", "m", {"z": 1, "a": 2}, ()))
""") == 46


@pytest.mark.parametrize("impl", ["frame_into", "py_frame_into"])
@pytest.mark.parametrize("args,expected", [
    ("1, 'i', 'm', {1: 'v'}, ()", ("TypeError", "log field keys must be str")),
    ("1, 'i', 'm', {b'k': 'v'}, ()", ("TypeError", "log field keys must be str")),
    ("1, 'i', 'm', {'k': [1]}, ()", ("TypeError", "log values must be str, int, float, bool or None")),
    ("1, 'i', 'm', {'k': b'x'}, ()", ("TypeError", "log values must be str, int, float, bool or None")),
    ("1, 'i', 'm', [('k', 1)], ()", ("TypeError", "fields must be a dict")),
])
def test_json_bad_inputs(impl, args, expected):
    assert mp_error(JSON + "%s(bytearray(100), %s)" % (impl, args)) == expected


def test_json_framing_allocates_nothing_per_line():
    per_line = mp_eval(JSON + """
import gc
buf = bytearray(256)
fields = {"relay": "pump", "on": True, "token": "abc", "n": 12345}
mask = ("token",)
def run(n):
    for _ in range(n):
        frame_into(buf, 1700000000, "info", "relay switched", fields, mask)
def used(n):
    gc.collect(); m = gc.mem_alloc()
    run(n)
    return gc.mem_alloc() - m
print((used(1100) - used(100)) / 1000)
""")
    assert per_line == 0


def test_helper_sees_micropython_errors():
    # The harness itself can fail: a broken snippet is an error, not a pass.
    with pytest.raises(MicroPythonError):
        run_unix("import _iotlib\n_iotlib.no_such_function()")


# ---- frame_at: the Logger's records (nested fields flattened and masked in C) -----------

FRAME_AT = """
from iotlib.jsonlog import frame_at, py_frame_at
class Thing:
    def __str__(self):
        return 'thing "q" \\n'
def both(fields, mask, at=3, size=700):
    a = bytearray(size); b = bytearray(size)
    na = frame_at(a, at, 1700000000, "INFO", "m \\x01 é", fields, mask)
    nb = py_frame_at(b, at, 1700000000, "INFO", "m \\x01 é", fields, mask)
    return na, nb, bytes(a[at:at + na]), bytes(b[at:at + nb])
"""

NESTED = ("{'relay': 'pump', 'token': 's3cr3t', 't': 21.5, 'big': 2**70, 'n': None,"
          " 'req': {'headers': {'token': 'x', 'a': [1, 2.5, None, {'b': 'c'}]},"
          " 'auth': {'password': 'p'}}, 5: 'int key', b'k': 'bytes key', 'obj': Thing(),"
          " 'raw': b'by\\n', 'tup': (True, False), 'empty': {}, 'ключ': ['é']}")


@pytest.mark.parametrize("mask", ["('token',)", "{'token', 'req.auth'}", "None", "[]",
                                  "['0', 'req.headers.a.1', 'tup']", "('ключ',)"])
def test_frame_at_flattens_masks_and_matches_the_fallback_byte_for_byte(mask):
    na, nb, a, b = mp_eval(FRAME_AT + "print(both(%s, %s))" % (NESTED, mask))
    assert na == nb == len(a) and a == b
    rec = json.loads(a)
    masked = eval(mask) or ()
    assert rec["req.headers.a.3.b"] == "c" and rec["5"] == "int key"
    assert rec["b'k'"] == "bytes key" and rec["obj"] == 'thing "q" \n'
    assert rec["raw"] == "b'by\\n'" and rec["big"] == 2 ** 70 and "empty" not in rec
    assert rec["token"] == ("***" if "token" in masked else "s3cr3t")
    assert rec["req.headers.token"] == ("***" if "token" in masked else "x")
    if "req.auth" in masked:
        assert rec["req.auth"] == "***" and "req.auth.password" not in rec
    if "tup" in masked:
        assert rec["tup"] == "***"
    else:
        assert rec["tup.0"] is True
    if "0" in masked:  # a list index is a key like any other
        assert rec["req.headers.a.0"] == "***" and rec["req.headers.a.1"] == "***"


def test_frame_at_returns_the_length_without_writing_past_the_end():
    out = mp_eval(FRAME_AT + """
need = frame_at(bytearray(300), 0, 1, "INFO", "hello", {"a": {"b": 1}}, ())
res = []
for f in (frame_at, py_frame_at):
    backing = bytearray(b"#" * 64)
    view = memoryview(backing)[:20]
    res.append((f(view, 5, 1, "INFO", "hello", {"a": {"b": 1}}, ()), bytes(backing[20:])))
print((need, res))
""")
    need, res = out
    assert res == [(need, b"#" * 44)] * 2


@pytest.mark.parametrize("impl", ["frame_at", "py_frame_at"])
@pytest.mark.parametrize("args,expected", [
    ("0, 1, 'I', 'm', {'a' * 129: 1}, ()", ("ValueError", "log field name longer than 128 bytes")),
    ("0, 1, 'I', 'm', {'a' * 60: {'b' * 68: 1}}, ()",
     ("ValueError", "log field name longer than 128 bytes")),
    ("0, 1, 'I', 'm', deep, ()", ("ValueError", "log fields nested deeper than 8 levels")),
    ("0, 1, 'I', 'm', [('k', 1)], ()", ("TypeError", "fields must be a dict")),
    ("101, 1, 'I', 'm', {}, ()", ("ValueError", "offset 101 outside the buffer (100 bytes)")),
    ("0, [1], 'I', 'm', {}, ()", ("TypeError", "log values must be str, int, float, bool or None")),
])
def test_frame_at_bad_inputs(impl, args, expected):
    deep = "deep = {}\nd = deep\nfor i in range(8):\n    d['k'] = {}\n    d = d['k']\nd['v'] = 1\n"
    assert mp_error(FRAME_AT + deep + "%s(bytearray(100), %s)" % (impl, args)) == expected


def test_frame_at_exact_depth_and_name_limits_are_accepted():
    na, nb, a, b = mp_eval(FRAME_AT + """
deep = {}
d = deep
for i in range(7):
    d['k'] = {}
    d = d['k']
d['v'] = 1
deep['x' * 128] = 2
print(both(deep, ()))
""")
    assert a == b and json.loads(a)["k.k.k.k.k.k.k.v"] == 1


def test_logger_line_allocates_nothing_and_fallback_writes_the_same_files(tmp_path):
    per_line, same, counts = mp_eval("\n" + device_script(__file__, "logger_line_allocates_nothing.py"), cwd=str(tmp_path))
    assert per_line == 0 and same
    assert counts[0] == counts[1] and counts[0][0] == 120 + 12 * 4 and counts[0][1] == 0
    assert counts[0][2] == 3  # app.log and keep=2 rotated files


def test_logger_bad_calls_are_clear_errors():
    out = mp_error("""
from iotlib.logger import Logger
Logger(directory="/tmp/never-written").log("NOPE", "m")
""")
    assert out == ("ValueError", "unknown log level NOPE")
    for native in ("True", "False"):
        assert mp_error("""
from iotlib.logger import Logger
Logger(directory="/tmp/never-written", native=%s).log("INFO", "m", {}, 4)
""" % native)[0] == "TypeError"
        assert mp_error("""
from iotlib.logger import Logger
Logger(directory="/tmp/never-written", native=%s).log("INFO", "m", [1, 2])
""" % native) == ("TypeError", "fields must be a dict")


def test_the_simulated_chip_reads_room_temperature_until_a_test_sets_it():
    t = mp_eval(ADC + """
print(AdcSampler().read_temperature_c())
""")
    assert abs(t - 27.0) < 0.5
