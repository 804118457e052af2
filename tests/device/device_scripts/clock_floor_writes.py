# Run by tests/device/test_wallclock.py.
import json
from iotlib.clock import Clock
from iotlib.storage import Storage
clock = Clock(store=Storage("."), persist_s=3600)
def floor():
    return json.load(open("clock.json"))["floor"] - clock.time()
clock.sync(0)
print("first", floor())
clock.offset_s = 600       # ten minutes later: another SNTP round, no flash write
clock.sync(0)
print("later", floor())
clock.offset_s = 3700      # over an hour since the last write: written again
clock.sync(0)
print("hour", floor())
