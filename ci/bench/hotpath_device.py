# Runs ON the emulated RP2040 (sent as source by bench_hotpath.py): times each hot path and
# prints one "name value" line per figure. Every case is a function that builds its own
# objects as locals and times its own loop, so all sides pay the same scope (a loop at
# module level would pay global stores and loads, more for the side with more names).
# Each timed run: gc.collect(), gc off while timing (the allocating baselines do not pay a
# collection inside the loop: in their favour), gc back on. Heap per operation is a slope:
# the same function run for n and for 2n operations, the difference divided by n, so the
# setup and the timing calls cancel out.
import asyncio
import gc
import json
import os
import time
from array import array

from machine import Pin, mem32

from iotlib.adc_sampler import AdcSampler
from iotlib.audit import Audit, _hash
from iotlib.clock import Clock
from iotlib.jsonlog import frame_into, py_frame_into
from iotlib.logger import Logger
from iotlib.relay_bank import RelayBank

N = 200
ticks_us, ticks_diff = time.ticks_us, time.ticks_diff


def report(name, value):
    print("%s %.3f" % (name, value))


def timed(fn, n):
    """us per operation of fn(n) (fn returns its loop's own elapsed us)."""
    gc.collect()
    gc.disable()
    try:
        dt = fn(n)
    finally:
        gc.enable()
    return dt / n


def heap_per_op(fn, n):
    """Heap bytes per operation: fn(2n) against fn(n), gc off during each."""
    used = []
    for k in (n, 2 * n):
        gc.collect()
        gc.disable()
        a0 = gc.mem_alloc()
        try:
            fn(k)
        finally:
            a1 = gc.mem_alloc()
            gc.enable()
        used.append(a1 - a0)
    return (used[1] - used[0]) / n


def clear_dir(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        os.remove(path + "/" + name)
    os.rmdir(path)


# ---- the loops' own cost, measured in this run (the host subtracts them for "net") -------
def loop_half(n):  # relay loops: n // 2 turns, two batches per turn
    t = ticks_us()
    for i in range(n // 2):
        pass
    return ticks_diff(ticks_us(), t)


def loop_full(n):  # JSON loops: n turns, one line each
    t = ticks_us()
    for i in range(n):
        pass
    return ticks_diff(ticks_us(), t)


# ---- relays: 8 pins, every turn switches all of them on, then all off --------------------
PINS = {"r%d" % i: 2 + i for i in range(8)}


def relay_batches(bank, pins, n):
    # every turn switches all eight on, then all off: two batch writes
    on = {name: True for name in pins}
    off = {name: False for name in pins}
    t = ticks_us()
    for i in range(n // 2):
        bank.write(on)
        bank.write(off)
    return ticks_diff(ticks_us(), t)


def relay_c(n):
    return relay_batches(RelayBank(PINS), PINS, n)


def relay_py(n):
    pins = {"p%d" % i: 12 + i for i in range(8)}
    return relay_batches(RelayBank(pins, native=False), pins, n)


def relay_pin_unrolled(n):
    # what a user writes for eight relays: eight Pin objects in locals, one call each
    p0, p1, p2, p3 = Pin(12, Pin.OUT), Pin(13, Pin.OUT), Pin(14, Pin.OUT), Pin(15, Pin.OUT)
    p4, p5, p6, p7 = Pin(16, Pin.OUT), Pin(17, Pin.OUT), Pin(18, Pin.OUT), Pin(19, Pin.OUT)
    t = ticks_us()
    for i in range(n // 2):
        p0.value(1)
        p1.value(1)
        p2.value(1)
        p3.value(1)
        p4.value(1)
        p5.value(1)
        p6.value(1)
        p7.value(1)
        p0.value(0)
        p1.value(0)
        p2.value(0)
        p3.value(0)
        p4.value(0)
        p5.value(0)
        p6.value(0)
        p7.value(0)
    return ticks_diff(ticks_us(), t)


def relay_pin_loop(n):
    # the same with the pins in a list and an inner loop (the old bench's stock figure)
    pins = [Pin(g, Pin.OUT) for g in range(12, 20)]
    t = ticks_us()
    for i in range(n // 2):
        for p in pins:
            p.value(1)
        for p in pins:
            p.value(0)
    return ticks_diff(ticks_us(), t)


def relay_mem32_floor(n):
    # the floor: one batch = two stores (GPIO_OUT_SET and GPIO_OUT_CLR), nothing else
    m = mem32
    sio_set, sio_clr, mask = 0xD0000014, 0xD0000018, 0xFF << 12
    t = ticks_us()
    for i in range(n // 2):
        m[sio_set] = mask
        m[sio_clr] = 0
        m[sio_set] = 0
        m[sio_clr] = mask
    return ticks_diff(ticks_us(), t)


# ---- JSON lines: one record with a masked token -----------------------------------------
FIELDS = {"relay": "pump", "on": True, "token": "s3cr3t", "temp": 21.5, "n": 42}
MASK_KEYS = ("token",)
TS = 1700000000


def json_line(level, msg, fields, mask, ts):
    # json.dumps plus masking, as a user writes it: a dict per line. The stamp is passed in
    # (no clock read per line, in the baseline's favour: see clock_time_us)
    rec = {"ts": ts, "level": level, "msg": msg}
    for k in fields:
        rec[k] = "***" if k in mask else fields[k]
    return json.dumps(rec)


def json_dumps(n):
    fields, mask = FIELDS, MASK_KEYS
    t = ticks_us()
    for i in range(n):
        json_line("INFO", "relay switched", fields, mask, TS)
    return ticks_diff(ticks_us(), t)


def clock_time(n):
    # what a time.time() per line would add to the baseline
    now = time.time
    t = ticks_us()
    for i in range(n):
        now()
    return ticks_diff(ticks_us(), t)


def json_c(n):
    buf = bytearray(256)
    fields, mask = FIELDS, MASK_KEYS
    t = ticks_us()
    for i in range(n):
        frame_into(buf, TS, "INFO", "relay switched", fields, mask)
    return ticks_diff(ticks_us(), t)


def json_py(n):
    buf = bytearray(256)
    fields, mask = FIELDS, MASK_KEYS
    t = ticks_us()
    for i in range(n):
        py_frame_into(buf, TS, "INFO", "relay switched", fields, mask)
    return ticks_diff(ticks_us(), t)


# ---- the Logger users call: as the device builds it (iotlib.device), on the filesystem ---
# ring_bytes=1536 as on the device, max_bytes 16 KB and keep=3 (the defaults): a line is
# ~110 B, so the ring is written out every ~7 lines (the writer is woken at half full) and
# the file rotates every ~150 lines; both happen inside the timed runs.
LOG_DIR = "/bench_log"
write_time = [0, 0]  # us spent writing the ring to flash (append, rotation, sync), writes


def make_logger(native=True, flash=True):
    clear_dir(LOG_DIR)
    log = Logger(mask_fields=["token"], clock=Clock(), ring_bytes=1536, directory=LOG_DIR,
                 native=native)
    write = log._write
    ring = log._ring

    def timed_write(durable):  # every write-out: the writer's, a caller's, flush()
        t = ticks_us()  # (no gc.mem_alloc() here: it walks the whole heap, milliseconds)
        if flash:
            write(durable)
        else:  # the same path with the flash write taken out: the ring is emptied
            ring.used = ring.last = 0
        write_time[0] += ticks_diff(ticks_us(), t)
        write_time[1] += 1

    log._write = timed_write
    return log


def logger_busy(n, native=True, flash=True):
    # a caller that never yields: the writer never runs, the caller writes each full ring
    logger = make_logger(native, flash)
    fields = FIELDS
    write_time[0] = write_time[1] = 0
    t = ticks_us()
    for i in range(n):
        logger.log("INFO", "relay switched", fields)
    dt = ticks_diff(ticks_us(), t)
    logger._close()
    return dt


def logger_c(n):
    return logger_busy(n, True)


def logger_c_ring(n):
    return logger_busy(n, True, False)


def logger_py(n):
    return logger_busy(n, False)


def logger_started(n, with_log=True):
    """The Logger as the device runs it: started (its writer task running), lines logged
    from a coroutine that yields between lines, as request handlers do. Each call is timed
    and its heap counted on its own: (caller us, caller heap B, the whole loop's heap B)
    summed over n calls; the same shape without the call (with_log=False) is the
    measuring's own cost. What the loop allocates beyond the calls is the writer's (and
    the event loop's, if any)."""
    logger = make_logger()
    write_time[0] = write_time[1] = 0

    async def run():
        await logger.start()
        log, fields, alloc, sleep = logger.log, FIELDS, gc.mem_alloc, asyncio.sleep_ms
        us = heap = 0
        start = alloc()
        for i in range(n):
            a = alloc()
            t = ticks_us()
            if with_log:
                log("INFO", "relay switched", fields)
            us += ticks_diff(ticks_us(), t)
            heap += alloc() - a
            await sleep(0)
        total = alloc() - start
        await logger.stop()
        return us, heap, total

    gc.collect()
    gc.disable()
    try:
        return asyncio.run(run())
    finally:
        gc.enable()
        logger._close()


def logger_call(n):
    # the call alone: a ring big enough for every line, so it never fills (n <= 140)
    clear_dir(LOG_DIR)
    logger = Logger(mask_fields=["token"], clock=Clock(), ring_bytes=16384, directory=LOG_DIR)
    fields = FIELDS
    t = ticks_us()
    for i in range(n):
        logger.log("INFO", "relay switched", fields)
    return ticks_diff(ticks_us(), t)


# ---- the audit trail: one relay command per record, SHA-256 chained ---------------------
AUDIT_DIR = "/bench_audit"


def make_audit():
    clear_dir(AUDIT_DIR)
    # as iotlib.device builds the command trail: files closed between records
    return Audit(directory=AUDIT_DIR, mask_fields=["token"], clock=Clock(), keep_open=False)


def audit_records(n):
    audit = make_audit()
    changes = {"relay1": "HIGH"}
    t = ticks_us()
    for i in range(n):
        audit.record("relay_command", source="bench", changes=changes)
    return ticks_diff(ticks_us(), t)


AUDIT_LINE = [b""]


def audit_hash(n):
    line = memoryview(AUDIT_LINE[0])
    t = ticks_us()
    for i in range(n):
        _hash(line)
    return ticks_diff(ticks_us(), t)


# ---- ADC: conversions made near-instant by the host, so time is CPU time -----------------
def adc_burst(sampler, n):
    abuf = array("H", bytes(2 * n))
    sampler.burst((0, 1), abuf)  # warm-up: ADC init, pads
    gc.collect()
    t = ticks_us()
    sampler.burst((0, 1), abuf)
    return ticks_diff(ticks_us(), t)


def adc(name, sampler):
    # two burst lengths: the difference is the per-sample cost, the rest the per-call cost
    short, long = 16, 256
    t_short, t_long = adc_burst(sampler, short), adc_burst(sampler, long)
    per_sample = (t_long - t_short) / (long - short)
    report(name + "_us_per_sample", per_sample)
    report(name + "_us_fixed", t_short - short * per_sample)


def main():
    report("loop_half_us", timed(loop_half, N))
    report("loop_full_us", timed(loop_full, N))

    # JSON and the Logger first: the json.dumps baseline allocates, and is timed on the
    # least fragmented heap this process has (in its favour)
    buf = bytearray(256)
    report("json_line_bytes", frame_into(buf, TS, "INFO", "relay switched", FIELDS, MASK_KEYS))
    report("json_dumps_line_bytes", len(json_line("INFO", "relay switched", FIELDS, MASK_KEYS, TS)) + 1)
    report("clock_time_us", timed(clock_time, N // 4))
    report("json_dumps_us", timed(json_dumps, N))
    report("json_c_us", timed(json_c, N))
    report("json_py_us", timed(json_py, N // 4))  # ~1 KB per line, gc off: fewer
    report("json_c_heap_bytes", heap_per_op(json_c, N))
    report("json_py_heap_bytes", heap_per_op(json_py, N // 4))
    report("json_dumps_heap_bytes", heap_per_op(json_dumps, N // 2))

    lines = 3 * N  # ~4 rotations at 16 KB: write-outs and rotation are part of the figures
    # heap as a slope (n and 2n lines): the first line's clock read (128 B) cancels out
    us, heap, total = logger_started(lines)
    report("logger_started_writes", write_time[1])
    report("logger_started_write_us", write_time[0] / lines)
    empty_us, empty_heap, empty_total = logger_started(lines, False)
    report("logger_started_us", (us - empty_us) / lines)
    us2, heap2, total2 = logger_started(2 * lines)
    report("logger_started_heap_bytes", (heap2 - heap) / lines - (empty_heap / lines))
    report("logger_started_write_heap_bytes", ((total2 - heap2) - (total - heap)) / lines)
    report("logger_c_us", timed(logger_c, lines))
    report("logger_c_flush_us", write_time[0] / lines)
    report("logger_c_flushes", write_time[1])
    report("logger_c_lines", lines)
    report("logger_c_heap_bytes", heap_per_op(logger_c, lines))
    report("logger_ring_us", timed(logger_c_ring, lines))
    report("logger_ring_heap_bytes", heap_per_op(logger_c_ring, lines))
    report("logger_call_us", timed(logger_call, 2 * N // 3))
    report("logger_call_heap_bytes", heap_per_op(logger_call, N // 3))
    report("logger_py_us", timed(logger_py, N // 4))
    report("logger_py_heap_bytes", heap_per_op(logger_py, N // 4))
    logger = make_logger()
    logger.log("INFO", "relay switched", FIELDS)
    ring = logger._ring
    report("logger_line_bytes", ring.used - ring.last)
    logger._close()
    clear_dir(LOG_DIR)

    records = 20
    report("audit_record_us", timed(audit_records, records))
    report("audit_record_heap_bytes", heap_per_op(audit_records, records // 2))
    audit = make_audit()
    audit.record("relay_command", source="bench", changes={"relay1": "HIGH"})
    with open(audit.path, "rb") as f:
        AUDIT_LINE[0] = f.read()
    report("audit_line_bytes", len(AUDIT_LINE[0]))
    report("audit_hash_us", timed(audit_hash, N // 4))
    report("audit_hash_heap_bytes", heap_per_op(audit_hash, N // 4))
    clear_dir(AUDIT_DIR)

    report("relay_c_us", timed(relay_c, N))
    report("relay_py_us", timed(relay_py, N))
    report("relay_pin_unrolled_us", timed(relay_pin_unrolled, N))
    report("relay_pin_loop_us", timed(relay_pin_loop, N))
    report("relay_mem32_floor_us", timed(relay_mem32_floor, N))
    report("relay_c_heap_bytes", heap_per_op(relay_c, N))
    report("relay_pin_unrolled_heap_bytes", heap_per_op(relay_pin_unrolled, N))

    adc("adc_c", AdcSampler())
    adc("adc_py", AdcSampler(native=False))
    print("bench_done 1")


main()
