# Run by tests/hotpath/test_hotpath_rp2.py.
import os
from iotlib.logger import Logger
log = Logger(directory="/sync", ring_bytes=512, max_bytes=4096)
def size():
    return os.stat("/sync/app.log")[6]
lines = 0
while not log._unsynced:  # until the first full ring was written out
    log.log("INFO", "switched", {"relay": "pump", "n": lines})
    lines += 1
spilled = log._file_bytes
before = size()
log.flush()
after = size()
first = log._file
while log._file is first:  # up to the rotation (a new live file)
    log.log("INFO", "switched", {"relay": "pump", "n": lines})
    lines += 1
rotated = os.stat("/sync/app.log.1")[6]
print((spilled, before, after, rotated, size()))
