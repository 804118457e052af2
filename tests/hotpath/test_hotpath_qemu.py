"""The simulated backend's tests on the qemu MPS2_AN385 image (Cortex-M3, no FPU).

That image freezes no Python, so the scripts call _iotlib directly; the pure-Python
JSON and relay fallbacks are sent along as source, to check byte-identical output on a
second architecture and float format.
"""
import ast
import json

import pytest

from harness.run import BUILD, ROOT, need
from harness.scripts import device_script
from harness.qemu_repl import QemuError, run_qemu

pytestmark = pytest.mark.qemu

SRC = ROOT / "modules" / "iotlib"


def qemu_eval(code):
    elf = need(BUILD / "qemu" / "firmware.elf", "firmware/build.sh qemu")
    return ast.literal_eval(run_qemu(elf, code).strip().splitlines()[-1])


def with_module(filename, name):
    """Source that defines `name` as a dict of the module's globals, on the board."""
    return "%s = {}\nexec(%r, %s)\n" % (name, (SRC / filename).read_text(), name)


def test_backend_is_sim():
    assert qemu_eval("import _iotlib\nprint(repr(_iotlib.build_info()['backend']))") == "sim"


def test_relay_bank_on_qemu():
    out = qemu_eval("\n" + device_script(__file__, "relay_bank_qemu.py"))
    r0, r1, err, unchanged, state, errs = out
    assert r0 == 0b10000 and r1 == 0b11100
    assert err == "interlock: pump and heater cannot both be on" and unchanged
    assert state == [("fan", True), ("heater", False), ("pump", True)]
    assert errs == ["pin 23 not allowed", "pin 25 not allowed", "pin 29 not allowed",
                    "unknown relay nope"]


def test_relay_fallback_matches_on_qemu():
    # the qemu image freezes no iotlib (no hal to make pins): the pins keep levels in memory
    out = qemu_eval(with_module("_relay_bank_py.py", "rb") + "\n"
                    + device_script(__file__, "relay_fallback_qemu.py"))
    assert out == ([("heater", False), ("pump", True)],
                   "interlock: pump and heater cannot both be on")


def test_adc_burst_on_qemu():
    out = qemu_eval("""
import _iotlib
from array import array
_iotlib.sim_adc_set(0, 1234)
_iotlib.sim_adc_feed(4, array("H", [700, 800, 900]))
buf = array("H", bytes(2 * 7))
n, st = _iotlib.adc_burst((0, 4), buf, 500000)
try:
    _iotlib.adc_burst((4, 0), buf, 500000)
    e = None
except ValueError as x:
    e = str(x)
print((n, [(a, b, round(c, 3)) for a, b, c in st], list(buf), e))
""")
    n, stats, buf, err = out
    assert n == 6 and buf[:6] == [1234, 700, 1234, 800, 1234, 900]
    assert stats == [(1234, 1234, 1234.0), (700, 900, 800.0)]
    assert err == "channels must be ascending, unique, 0-4"


@pytest.mark.parametrize("fields,mask", [
    ("{'token': 'secret', 'relay': 'pump', 'on': True}", "('token',)"),
    ("{'u': 'é 日本 🙂', 'ctl': '\\x00\\x1f\\n\\t\"\\\\'}", "()"),
    ("{'f': 0.1, 'g': 1e22, 'i': -7, 'n': None, 'nan': float('nan')}", "()"),
])
def test_json_framing_on_qemu_matches_fallback(fields, mask):
    c_line, py_line = qemu_eval(with_module("_jsonlog_py.py", "jl") + """
import _iotlib
a = bytearray(300); b = bytearray(300)
f = %s
na = _iotlib.frame_into(a, 1700000000, "info", "msg \\x01 é", f, %s)
nb = jl["frame_into"](b, 1700000000, "info", "msg \\x01 é", f, %s)
print((bytes(a[:na]), bytes(b[:nb])))
""" % (fields, mask, mask))
    assert c_line == py_line
    assert json.loads(c_line)["msg"] == "msg \x01 é"


def test_json_too_small_on_qemu():
    assert qemu_eval("""
import _iotlib
try:
    _iotlib.frame_into(bytearray(8), 1, "info", "m", {}, ())
except ValueError as e:
    print(repr(str(e)))
""") == "log record needs %d bytes, buffer has 8" % len(b'{"ts":1,"level":"info","msg":"m"}\n')


def test_qemu_errors_reach_the_test():
    with pytest.raises(QemuError):
        qemu_eval("import _iotlib\n_iotlib.adc_burst((0,), bytearray(4), 1000)")
