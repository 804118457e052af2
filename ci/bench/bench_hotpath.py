"""Hot-path benchmarks on the emulated RP2040 (rp2040py, simulated 125 MHz clock).

    IOTLIB_BUILD=/tmp/build-c .venv/bin/python ci/bench/bench_hotpath.py [path/to/X.uf2]

Boots the RELAYS image, runs hotpath_device.py on it and prints, side by side in one run:
the relay batch against eight hand-unrolled Pin.value() calls and the floor of two
machine.mem32 stores; frame_into and Logger.log per line (us and heap bytes) against
json.dumps plus masking, for the Logger as the device runs it (writer task started, the caller
yielding between lines) and for a caller that never yields (it writes the ring out itself); the audit trail's per-record and hashing cost; ADC CPU cycles per
sample. Every side runs inside a function with locals (hotpath_device.py). Relay and JSON
figures are printed raw (as timed, including the emulated loop's own cost) and net (minus
an empty loop of the same shape timed in the same run). Heap bytes per operation are slopes.
Not a timed test: the figures and ratios are for reading (and for the closing note).

ADC: the emulator's converter is not realistic, so the host replaces it with one that
answers in one nanosecond but only when the FIFO has room (it never overruns). A burst
then costs only the CPU's own work per sample, which is what the C path is judged by.
"""
import asyncio
import os
import pathlib
import sys

from rp2040py.boards import BOARDS, resolve_firmware
from rp2040py.device import MicroPythonDevice
from rp2040py.peripherals.adc import RPADC

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MHZ = 125


def fix_adc_round_robin(mcu):
    """rp2040py 0.3.6 keeps two rp2040js round-robin bugs (AINSEL masked with 12, the wrap
    from channel 4 skipping 0); restore the datasheet behaviour (tests/hotpath/test_hotpath_rp2.py)."""
    def set_ainsel(adc, channel):
        adc.cs = (adc.cs & ~(0x7 << 12)) | ((channel & 0x7) << 12)

    RPADC._active_channel = property(RPADC._active_channel.fget, set_ainsel)
    mcu.adc.num_channels = 6


def instant_adc(mcu):
    """Conversions that take ~1 ns and wait while the 4-deep FIFO is full."""
    adc = mcu.adc
    state = {"ch": 0}

    def complete():
        # FIFO on, full and still free-running: hold the sample back until the CPU reads.
        if adc.fcs & 1 and adc.fifo.full and adc.cs & (1 << 3):
            alarm.schedule(8)
            return
        adc.complete_adc_read(adc.channel_values[state["ch"]], False)

    alarm = mcu.clock.create_alarm(complete)

    def on_read(channel):
        adc.current_channel = state["ch"] = channel
        alarm.schedule(1)

    adc.on_adc_read = on_read


async def measure(image):
    board = resolve_firmware(BOARDS["pico"], "micropython", str(image))
    async with MicroPythonDevice(board=board) as device:
        device.mcu.adc.channel_values[:] = [1000, 2000, 3000, 0, 800]
        fix_adc_round_robin(device.mcu)
        instant_adc(device.mcu)
        out, err = await device.aexec((HERE / "hotpath_device.py").read_text(), timeout=1800)
    if err:
        sys.exit("bench failed on the device:\n" + err.decode(errors="replace"))
    figures = {}
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:
            figures[parts[0]] = float(parts[1])
    return figures


def main():
    build = pathlib.Path(os.environ.get("IOTLIB_BUILD") or ROOT / "build")
    image = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else build / "rp2" / "PICO_W_IOT-RELAYS.uf2"
    f = asyncio.run(measure(image))
    if "bench_done" not in f:
        sys.exit("bench did not finish: %r" % f)
    W = 38

    def cell(label, value, base, unit="us"):
        # a figure and how many times the first column's figure it is
        return "   %s %8.2f %s (%5.2fx)" % (label, value, unit, value / base)

    print("hot path on the emulated RP2040 at %d MHz, RELAYS image: per operation, every side"
          " timed inside a function with locals, gc off while timing" % MHZ)
    print("(raw = as timed, the loop's own cost included alike; net = minus an empty loop of the"
          " same shape: %.2f us per relay batch, %.2f us per JSON line)"
          % (f["loop_half_us"], f["loop_full_us"]))
    print()
    # ---- relays ------------------------------------------------------------------------
    for label, loop in (("raw", 0.0), ("net", f["loop_half_us"])):
        c = f["relay_c_us"] - loop
        line = "%-*s C %8.2f us" % (W, "8-relay batch write (%s)" % label, c)
        line += cell("8x Pin.value unrolled", f["relay_pin_unrolled_us"] - loop, c)
        line += cell("Pin loop", f["relay_pin_loop_us"] - loop, c)
        line += cell("fallback", f["relay_py_us"] - loop, c)
        print(line)
        floor = f["relay_mem32_floor_us"] - loop
        print("%-*s floor, two machine.mem32 stores: %.2f us; C is %.2fx the floor (target <= 1.30x: %s)"
              % (W, "", floor, c / floor, "met" if c / floor <= 1.3 else "MISSED"))
    print("%-*s heap bytes per batch: C %.2f   8x Pin.value %.2f"
          % (W, "", f["relay_c_heap_bytes"], f["relay_pin_unrolled_heap_bytes"]))
    print()
    # ---- JSON framing ------------------------------------------------------------------
    for label, loop in (("raw", 0.0), ("net", f["loop_full_us"])):
        c = f["json_c_us"] - loop
        line = "%-*s C %8.2f us" % (W, "frame_into, %d B line (%s)" % (f["json_line_bytes"], label), c)
        line += cell("json.dumps+mask", f["json_dumps_us"] - loop, c)
        line += cell("fallback", f["json_py_us"] - loop, c)
        print(line)
    print("%-*s heap bytes per line: C %.2f   json.dumps+mask %.2f (%d B line)   fallback %.2f"
          % (W, "", f["json_c_heap_bytes"], f["json_dumps_heap_bytes"],
             f["json_dumps_line_bytes"], f["json_py_heap_bytes"]))
    print("%-*s (the json.dumps side gets its stamp for free; a time.time() per line would add"
          " %.2f us)" % (W, "", f["clock_time_us"] - f["loop_full_us"]))
    print()
    # ---- the Logger users call ---------------------------------------------------------
    ls, ld = f["logger_started_us"], f["json_dumps_us"]
    print("%-*s C %8.2f us   json.dumps+mask %8.2f us (%5.2fx the Logger's time)"
          % (W, "Logger.log per line, %d B (caller)" % f["logger_line_bytes"], ls, ld, ld / ls))
    print("%-*s the Logger started (its writer task running), lines from a coroutine that"
          " yields between lines; each call timed on its own, minus the same shape without it"
          % (W, ""))
    print("%-*s heap bytes per line: caller %.2f   json.dumps+mask %.2f"
          % (W, "", f["logger_started_heap_bytes"], f["json_dumps_heap_bytes"]))
    print("%-*s the writer task (woken at half ring): %.2f us per line for littlefs appends,"
          " syncs and rotation (%d write-outs in %d lines), %.2f heap B per line (with the"
          " event loop's)"
          % (W, "", f["logger_started_write_us"], f["logger_started_writes"],
             f["logger_c_lines"], f["logger_started_write_heap_bytes"]))
    lc = f["logger_c_us"]
    print("%-*s C %8.2f us   json.dumps+mask %8.2f us (%5.2fx)   fallback %8.2f us (%5.2fx)"
          % (W, "Logger.log, a caller that never yields", lc, ld, ld / lc,
             f["logger_py_us"], f["logger_py_us"] / lc))
    print("%-*s it writes each full ring itself: %.2f us per line (%d write-outs in %d lines);"
          " with the flash write taken out %.2f us per line"
          % (W, "", f["logger_c_flush_us"], f["logger_c_flushes"], f["logger_c_lines"],
             f["logger_ring_us"]))
    print("%-*s the call alone (a ring that never fills): %.2f us raw, %.2f us net, %.2f B"
          % (W, "", f["logger_call_us"], f["logger_call_us"] - f["loop_full_us"],
             f["logger_call_heap_bytes"]))
    print("%-*s heap bytes per line: never yielding %.2f (ring only %.2f)   fallback Logger %.2f"
          % (W, "", f["logger_c_heap_bytes"], f["logger_ring_heap_bytes"],
             f["logger_py_heap_bytes"]))
    print("%-*s targets, the caller: <= 150 us per line: %s (%.1f us)   0 B per line: %s (%.2f B)"
          % (W, "", "met" if ls <= 150.0 else "MISSED", ls,
             "met" if f["logger_started_heap_bytes"] <= 0.0 else "MISSED",
             f["logger_started_heap_bytes"]))
    print("%-*s %8.0f us per record (%d B line, two files opened, written, synced, closed),"
          " %.2f heap B per record"
          % (W, "audit trail record", f["audit_record_us"], f["audit_line_bytes"],
             f["audit_record_heap_bytes"]))
    print("%-*s %8.2f us per line (SHA-256 + hex of the %d B line), %.2f heap B per line"
          % (W, "  of which the chain hash", f["audit_hash_us"], f["audit_line_bytes"],
             f["audit_hash_heap_bytes"]))
    print()
    # ---- ADC -----------------------------------------------------------------------------
    c_cyc = f["adc_c_us_per_sample"] * MHZ
    py_cyc = f["adc_py_us_per_sample"] * MHZ
    print("%-*s C %8.2f us   fallback %8.2f us (fixed cost per burst call)"
          % (W, "ADC burst call overhead", f["adc_c_us_fixed"], f["adc_py_us_fixed"]))
    print("%-*s C %8.0f cyc  fallback %8.0f cyc (%5.1fx fewer in C)"
          % (W, "ADC CPU cycles per sample", c_cyc, py_cyc, py_cyc / c_cyc))
    # A conversion takes 96 ADC clocks (2 us): the C loop keeps up while its own work is
    # below that, so the hardware rate is the ADC's 500 ksps.
    conv_cycles = 2.0 * MHZ
    hw_ksps = 500.0 if c_cyc <= conv_cycles else 1000.0 * MHZ / c_cyc
    print("%-*s C path: %.0f ksps on hardware (CPU %.0f of the %.0f cycles a conversion takes);"
          " fallback: at most %.1f ksps"
          % (W, "", hw_ksps, c_cyc, conv_cycles, 1000.0 / (f["adc_py_us_per_sample"] + 2.0)))


if __name__ == "__main__":
    main()
