# Relay outputs as one bank: named pins changed together by one atomic register write,
# with the board's pin mask, per-pin active-low and interlocks enforced below Python.
# The C module (_iotlib) does the work when present; _relay_bank_py is the same
# behaviour in pure Python for a stock MicroPython.
try:
    import _iotlib

    NATIVE = True
except ImportError:
    _iotlib = None
    NATIVE = False

# Pico W user GPIOs 0-22 and 26-28; 23, 24, 25 and 29 belong to the CYW43 radio.
DEFAULT_ALLOWED_MASK = 0x007FFFFF | 0x1C000000


class InterlockError(ValueError):
    """A write would turn on both relays of an interlocked pair; nothing changed."""


class RelayBank:
    """RelayBank(pins, active_low=(), interlocks=(), allowed_mask=DEFAULT_ALLOWED_MASK)

    pins: dict name -> GPIO number; active_low: names driven low for ON; interlocks:
    (name, name) pairs never ON together. Every relay starts OFF.
    native=False forces the pure-Python path (tests and benchmarks compare the two).
    """

    def __init__(self, pins, active_low=(), interlocks=(), allowed_mask=DEFAULT_ALLOWED_MASK,
                 native=NATIVE, pin_factory=None):
        if native:
            if _iotlib is None:
                raise ValueError("native relay bank needs the _iotlib C module")
            impl = _iotlib.RelayBank(pins, active_low, interlocks, allowed_mask, InterlockError)
        else:
            from iotlib._relay_bank_py import PyRelayBank

            impl = PyRelayBank(pins, active_low, interlocks, allowed_mask, InterlockError,
                               pin_factory)
        self.native = native
        self.names = tuple(pins)
        # The bound methods themselves: bank.write(...) goes straight into C, no Python frame.
        self.write = impl.write
        self.read = impl.read

    def all_off(self):
        """Every relay OFF, in one write."""
        self.write({name: False for name in self.names})

    def apply_safe(self, states):
        """Exactly `states` (name -> bool), every relay not named OFF, in one write.
        An interlock violation raises InterlockError and leaves the outputs as they were."""
        full = {name: False for name in self.names}
        for name in states:
            if name not in full:
                raise ValueError("unknown relay %s" % name)
            full[name] = bool(states[name])
        self.write(full)
