# Run by tests/hotpath/test_hotpath_unix.py.
import gc, os
from iotlib.logger import Logger
F = {"relay": "pump", "on": True, "token": "s3cr3t", "temp": 21.5, "n": 42, "req": {"a": [1]}}
class Fixed:  # one timestamp for both loggers
    def time(self):
        return 1700000000
big = Logger(mask_fields=["token"], directory="big", ring_bytes=100000, max_bytes=10**6,
             clock=Fixed())
def run(n):
    for i in range(n):
        big.log("INFO", "relay switched", F)
def used(n):
    gc.collect(); gc.disable(); m = gc.mem_alloc(); run(n); r = gc.mem_alloc() - m
    gc.enable()
    return r
per_line = (used(300) - used(100)) / 200
# small ring and files: flushes, rotations, truncation and the odd records, both ways
kw = {"mask_fields": ["token"], "ring_bytes": 700, "max_bytes": 3000, "keep": 2,
      "line_bytes": 200, "clock": Fixed(), "level": "DEBUG", "stamp_ms": 0}
loggers = (Logger(directory="c", **kw), Logger(directory="p", native=False, **kw))
for log in loggers:
    for i in range(120):
        log.log("INFO", "relay switched", F)
        if i % 10 == 0:
            log.log("DEBUG", i)  # not a str: logged as its str()
            log.log("WARNING", "x" * 300, {"i": i})  # longer than a line: truncated
            log.log("ERROR", "deep", {"k" * 129: 1})  # a name over 128 bytes: truncated
            log.info("keywords", token="t", i=i)
    log.flush()
files = [sorted(os.listdir(d)) for d in ("c", "p")]
same = files[0] == files[1] and all(
    open("c/" + n).read() == open("p/" + n).read() for n in files[0])
print((per_line, same, [(l.lines, l.dropped, len(files[0])) for l in loggers]))
