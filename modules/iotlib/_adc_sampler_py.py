# Pure-Python ADC burst for a MicroPython without _iotlib: same checks, same results,
# one Python-level read per sample.
import time
from array import array


class PyAdcBurst:
    def __init__(self, read=None):
        self._read = read

    def __call__(self, channels, buf, rate_hz):
        channels = tuple(channels)
        n_ch = len(channels)
        if n_ch == 0 or n_ch > 5:
            raise ValueError("need 1-5 channels")
        prev = -1
        for ch in channels:
            if not 0 <= ch <= 4 or ch <= prev:
                raise ValueError("channels must be ascending, unique, 0-4")
            prev = ch
        # MicroPython arrays have no .typecode; an empty slice's repr names it.
        if not isinstance(buf, array) or repr(buf[:0]) != "array('H')":
            raise TypeError("buf must be array('H')")
        count = len(buf) // n_ch * n_ch
        if count == 0:
            raise ValueError("buf holds no full round")
        if not 733 <= rate_hz <= 500000:
            raise ValueError("rate_hz must be 733-500000")
        if self._read is None:  # the hardware's ADC (iotlib.hal: machine.ADC on rp2)
            from iotlib.hal import load
            self._read = load().adc()
        read = self._read
        period_us = 1000000 // rate_hz
        ticks_us, ticks_diff, ticks_add = time.ticks_us, time.ticks_diff, time.ticks_add
        due = ticks_us()
        for i in range(count):
            while ticks_diff(ticks_us(), due) < 0:
                pass
            due = ticks_add(due, period_us)
            buf[i] = read(channels[i % n_ch]) & 0xFFF
        stats = []
        for c in range(n_ch):
            lo, hi, total = 0xFFFF, 0, 0
            for i in range(c, count, n_ch):
                v = buf[i]
                lo = v if v < lo else lo
                hi = v if v > hi else hi
                total += v
            stats.append((lo, hi, total / (count // n_ch)))
        return count, stats
