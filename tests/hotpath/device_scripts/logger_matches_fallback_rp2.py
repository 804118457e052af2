# Run by tests/hotpath/test_hotpath_rp2.py.
import gc
from iotlib.logger import Logger
F = {"relay": "pump", "on": True, "token": "abc", "t": 21.5, "req": {"h": {"token": "x"}}}
T = 1700000000  # past the small-int range, as the chip's wall clock is
class Wall:
    def time(self):
        return T
logs = [Logger(mask_fields=["token"], directory="/rl%d" % i, ring_bytes=8192,
               native=not i, clock=Wall()) for i in (0, 1)]
def lines(n, log):
    for _ in range(n):
        log("INFO", "switched", F)
def used(n):
    gc.collect(); gc.disable(); m = gc.mem_alloc()
    lines(n, logs[0].log)
    r = gc.mem_alloc() - m
    gc.enable()
    return r
per_line = (used(30) - used(10)) / 20
logs[1].log("INFO", "switched", F)
rings = [bytes(memoryview(l._ring.buf)[l._ring.last:l._ring.used]) for l in logs]
print((per_line, rings[0] == rings[1] and b'"req.h.token":"***"' in rings[0]))
