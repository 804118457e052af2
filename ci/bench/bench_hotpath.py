"""Hot-path benchmarks on the emulated RP2040 (rp2040py, simulated 125 MHz clock).

    IOTLIB_BUILD=/tmp/build-c .venv/bin/python ci/bench/bench_hotpath.py [path/to/X.uf2]

Boots the RELAYS image, runs hotpath_device.py on it and prints C against the Python
fallback and stock MicroPython, side by side, with the ratios the issue sets as goals.
Each relay and JSON figure is printed raw (as timed, including the emulated loop's own
cost) and net (minus an empty loop of the same shape timed in the same run).
Not a timed test: the figures are for reading (and for the closing note).

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
    from channel 4 skipping 0); restore the datasheet behaviour (tests/test_hotpath_rp2.py)."""
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

    def row(what, c, py, stock=None, unit="us"):
        line = "%-34s C %9.2f %s   fallback %9.2f %s (%5.1fx)" % (what, c, unit, py, unit, py / c)
        if stock is not None:
            line += "   stock %9.2f %s (%5.1fx)" % (stock, unit, stock / c)
        print(line)

    def net_row(c, py, stock, loop):
        # The same figures minus the empty loop of the same shape (measured in this run).
        c, py, stock = c - loop, py - loop, stock - loop
        print("%-34s C %9.2f us   fallback %9.2f us (%5.1fx)   stock %9.2f us (%5.1fx)"
              % ("  net of the empty loop (%.2f us)" % loop, c, py, py / c, stock, stock / c))

    print("hot path on the emulated RP2040 at %d MHz (per operation; raw = as measured,"
          " including the loop; net = minus an empty loop of the same shape)" % MHZ)
    row("8-relay batch write (raw)", f["relay_c_us"], f["relay_py_us"], f["relay_pin_value_us"])
    net_row(f["relay_c_us"], f["relay_py_us"], f["relay_pin_value_us"], f["loop_half_us"])
    floor_net = f["relay_mem32_floor_us"] - f["loop_half_us"]
    print("%-34s floor: two machine.mem32 writes %.2f us raw, %.2f us net"
          " (C is %.2fx the floor raw, %.2fx net)"
          % ("", f["relay_mem32_floor_us"], floor_net, f["relay_c_us"] / f["relay_mem32_floor_us"],
             (f["relay_c_us"] - f["loop_half_us"]) / floor_net))
    row("JSON line (%d B; dumps %d B) (raw)" % (f["json_line_bytes"], f["json_dumps_line_bytes"]),
        f["json_c_us"], f["json_py_us"], f["json_dumps_us"])
    net_row(f["json_c_us"], f["json_py_us"], f["json_dumps_us"], f["loop_full_us"])
    print("%-34s heap bytes per line: C %.2f   fallback %.2f   json.dumps+mask %.2f"
          % ("", f["json_c_heap_bytes_per_line"], f["json_py_heap_bytes_per_line"],
             f["json_dumps_heap_bytes_per_line"]))
    c_cyc = f["adc_c_us_per_sample"] * MHZ
    py_cyc = f["adc_py_us_per_sample"] * MHZ
    print("%-34s C %9.2f us   fallback %9.2f us (fixed cost per burst call)"
          % ("ADC burst call overhead", f["adc_c_us_fixed"], f["adc_py_us_fixed"]))
    print("%-34s C %9.0f cyc   fallback %9.0f cyc (%5.1fx fewer in C)"
          % ("ADC CPU cycles per sample", c_cyc, py_cyc, py_cyc / c_cyc))
    # A conversion takes 96 ADC clocks (2 us): the C loop keeps up while its own work is
    # below that, so the hardware rate is the ADC's 500 ksps.
    conv_cycles = 2.0 * MHZ
    hw_ksps = 500.0 if c_cyc <= conv_cycles else 1000.0 * MHZ / c_cyc
    print("%-34s C path: %.0f ksps on hardware (CPU %.0f of the %.0f cycles a conversion takes);"
          " fallback: at most %.1f ksps"
          % ("", hw_ksps, c_cyc, conv_cycles, 1000.0 / (f["adc_py_us_per_sample"] + 2.0)))


if __name__ == "__main__":
    main()
