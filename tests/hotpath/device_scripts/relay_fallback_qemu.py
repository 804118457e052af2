# Run by tests/hotpath/test_hotpath_qemu.py (after its setup piece).
class Pin:
    def __init__(self, level):
        self.level = level
    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
b = rb["PyRelayBank"]({"pump": 2, "heater": 4}, ("heater",), (("pump", "heater"),),
                      0x1c7fffff, None, lambda gpio, level: Pin(level))
b.write({"pump": True})
try:
    b.write({"heater": True})
    e = None
except ValueError as x:
    e = str(x)
print((sorted(b.read().items()), e))
