# ADC bursts: round-robin samples over one or more channels into a caller-owned
# array('H'), with per-channel (min, max, mean) computed by the C module when present
# (_adc_sampler_py is the same behaviour in pure Python for a stock MicroPython).
from array import array

try:
    import _iotlib

    NATIVE = True
except ImportError:
    _iotlib = None
    NATIVE = False

TEMP_CHANNEL = 4       # the on-chip temperature sensor
MAX_RATE_HZ = 500000   # the RP2040 ADC's limit
MIN_RATE_HZ = 733      # slowest rate the ADC clock divider paces
_VOLTS_PER_COUNT = 3.3 / 4096


def temperature_c(raw):
    """RP2040 datasheet: 27 C at 0.706 V, falling 1.721 mV per degree."""
    return 27 - (raw * _VOLTS_PER_COUNT - 0.706) / 0.001721


class AdcSampler:
    """AdcSampler(native=NATIVE, read=None): read is the fallback's raw-sample source
    (channel -> 12-bit int), machine.ADC by default."""

    def __init__(self, native=NATIVE, read=None):
        if native:
            if _iotlib is None:
                raise ValueError("native ADC sampler needs the _iotlib C module")
            self._burst = _iotlib.adc_burst
        else:
            from iotlib._adc_sampler_py import PyAdcBurst

            self._burst = PyAdcBurst(read)
        self.native = native
        self._temp_buf = array("H", bytes(16 * 2))  # preallocated: a reading allocates little

    def burst(self, channels, buf, rate_hz=MAX_RATE_HZ):
        """Sample `channels` (ascending) round-robin into buf (array('H')), interleaved;
        returns (count, [(min, max, mean) per channel])."""
        return self._burst(channels, buf, rate_hz)

    def read_temperature_c(self):
        """Mean of 16 samples of the temperature sensor, in degrees Celsius."""
        _, stats = self._burst((TEMP_CHANNEL,), self._temp_buf, MAX_RATE_HZ)
        return temperature_c(stats[0][2])
