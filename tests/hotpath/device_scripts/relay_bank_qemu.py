# Run by tests/hotpath/test_hotpath_qemu.py.
import _iotlib
class InterlockError(ValueError):
    pass
b = _iotlib.RelayBank({"pump": 2, "fan": 3, "heater": 4}, ("heater",), (("pump", "heater"),),
                      0x1c7fffff, InterlockError)
r0 = _iotlib.sim_gpio()
b.write({"pump": True, "fan": True})
r1 = _iotlib.sim_gpio()
try:
    b.write({"heater": True})
    e = None
except InterlockError as x:
    e = str(x)
r2 = _iotlib.sim_gpio()
errs = []
for pins in ({"x": 23}, {"x": 25}, {"x": 29}):
    try:
        _iotlib.RelayBank(pins, (), (), 0x1c7fffff, None)
        errs.append(None)
    except ValueError as x:
        errs.append(str(x))
try:
    b.write({"nope": 1})
except ValueError as x:
    errs.append(str(x))
print((r0 & 0x1c, r1 & 0x1c, e, r2 == r1, sorted(b.read().items()), errs))
