# Runs ON the emulated RP2040 (sent as source by bench_hotpath.py): times each hot path,
# C module against the pure-Python fallback and stock MicroPython, and prints one
# "name value" line per figure. Each case is its own inline loop: no helper-call overhead.
import gc
import json
import time
from array import array

from machine import Pin, mem32

from iotlib.adc_sampler import AdcSampler
from iotlib.jsonlog import frame_into, py_frame_into
from iotlib.relay_bank import RelayBank

N = 200
ticks_us, ticks_diff = time.ticks_us, time.ticks_diff


def report(name, total_us, n):
    print("%s %.2f" % (name, total_us / n))


# ---- the loops' own cost: empty loops of the same shapes, measured in this run ---------
# The host subtracts them for the net figures (the raw ones stay as they are).
t = ticks_us()
for i in range(N // 2):
    pass
report("loop_half_us", ticks_diff(ticks_us(), t), N)  # relay loops: N // 2 turns, 2 ops each
t = ticks_us()
for i in range(N):
    pass
report("loop_full_us", ticks_diff(ticks_us(), t), N)  # JSON loops: N turns, 1 op each

# ---- relays: 8 pins, every batch flips all of them -----------------------------------
PINS = {"r%d" % i: 2 + i for i in range(8)}
ON = {n: True for n in PINS}
OFF = {n: False for n in PINS}

bank = RelayBank(PINS)
t = ticks_us()
for i in range(N // 2):
    bank.write(ON)
    bank.write(OFF)
report("relay_c_us", ticks_diff(ticks_us(), t), N)

pybank = RelayBank({"p%d" % i: 12 + i for i in range(8)}, native=False)
PON = {n: True for n in pybank.names}
POFF = {n: False for n in pybank.names}
t = ticks_us()
for i in range(N // 2):
    pybank.write(PON)
    pybank.write(POFF)
report("relay_py_us", ticks_diff(ticks_us(), t), N)

pins = [Pin(g, Pin.OUT) for g in range(12, 20)]
t = ticks_us()
for i in range(N // 2):
    for p in pins:
        p.value(1)
    for p in pins:
        p.value(0)
report("relay_pin_value_us", ticks_diff(ticks_us(), t), N)

SIO_SET, SIO_CLR, MASK = 0xD0000014, 0xD0000018, 0xFF << 12
t = ticks_us()
for i in range(N // 2):
    mem32[SIO_SET] = MASK
    mem32[SIO_CLR] = 0
    mem32[SIO_SET] = 0
    mem32[SIO_CLR] = MASK
report("relay_mem32_floor_us", ticks_diff(ticks_us(), t), N)

# ---- JSON: one 109-byte-class line with a masked token --------------------------------
FIELDS = {"relay": "pump", "on": True, "token": "s3cr3t", "temp": 21.5, "n": 42}
MASK_KEYS = ("token",)
TS = 1700000000
buf = bytearray(256)
n_line = frame_into(buf, TS, "info", "relay switched", FIELDS, MASK_KEYS)
print("json_line_bytes %d" % n_line)


def json_dumps_masked():
    rec = {"ts": TS, "level": "info", "msg": "relay switched"}
    for k in FIELDS:
        rec[k] = "***" if k in MASK_KEYS else FIELDS[k]
    return json.dumps(rec)


print("json_dumps_line_bytes %d" % (len(json_dumps_masked()) + 1))
gc.collect()
a0 = gc.mem_alloc()
t = ticks_us()
for i in range(N):
    frame_into(buf, TS, "info", "relay switched", FIELDS, MASK_KEYS)
dt = ticks_diff(ticks_us(), t)
report("json_c_us", dt, N)
# Heap per line as a slope (a 2N loop against an N loop), so the loop's own range object
# and the timing calls cancel out.
allocs = []
for n in (N, 2 * N):
    gc.collect()
    a0 = gc.mem_alloc()
    for i in range(n):
        frame_into(buf, TS, "info", "relay switched", FIELDS, MASK_KEYS)
    allocs.append(gc.mem_alloc() - a0)
print("json_c_heap_bytes_per_line %.2f" % ((allocs[1] - allocs[0]) / N))

gc.collect()
a0 = gc.mem_alloc()
gc.disable()
t = ticks_us()
for i in range(N):
    py_frame_into(buf, TS, "info", "relay switched", FIELDS, MASK_KEYS)
dt = ticks_diff(ticks_us(), t)
a1 = gc.mem_alloc()
gc.enable()
report("json_py_us", dt, N)
print("json_py_heap_bytes_per_line %.2f" % ((a1 - a0) / N))

gc.collect()
a0 = gc.mem_alloc()
gc.disable()
t = ticks_us()
for i in range(N):
    json_dumps_masked()
dt = ticks_diff(ticks_us(), t)
a1 = gc.mem_alloc()
gc.enable()
report("json_dumps_us", dt, N)
print("json_dumps_heap_bytes_per_line %.2f" % ((a1 - a0) / N))
gc.collect()

# ---- ADC: conversions made near-instant by the host, so time is CPU time ---------------
# Two burst lengths: the difference is the per-sample cost, the rest the per-call cost.
SHORT, LONG = 16, 256
for name, sampler in (("adc_c", AdcSampler()), ("adc_py", AdcSampler(native=False))):
    times = []
    for n in (SHORT, LONG):
        abuf = array("H", bytes(2 * n))
        sampler.burst((0, 1), abuf)  # warm-up: ADC init, pads
        gc.collect()
        t = ticks_us()
        sampler.burst((0, 1), abuf)
        times.append(ticks_diff(ticks_us(), t))
    per_sample = (times[1] - times[0]) / (LONG - SHORT)
    print("%s_us_per_sample %.3f" % (name, per_sample))
    print("%s_us_fixed %.2f" % (name, times[0] - SHORT * per_sample))
print("bench_done 1")
