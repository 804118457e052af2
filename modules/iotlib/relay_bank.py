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


def RelayBank(pins, active_low=(), interlocks=(), allowed_mask=DEFAULT_ALLOWED_MASK,
              native=NATIVE, pin_factory=None):
    """RelayBank(pins, active_low=(), interlocks=(), allowed_mask=DEFAULT_ALLOWED_MASK)

    pins: dict name -> GPIO number; active_low: names driven low for ON; interlocks:
    (name, name) pairs never ON together. Every relay starts OFF. The bank answers
    write(changes), read(), mask(), all_off() and apply_safe(states).
    native=False forces the pure-Python path (tests and benchmarks compare the two).
    The C object itself is returned, so bank.write(...) is one call into C (a Python
    wrapper's bound method would add a lookup and a call to every batch).
    """
    if native:
        if _iotlib is None:
            raise ValueError("native relay bank needs the _iotlib C module")
        return _iotlib.RelayBank(pins, active_low, interlocks, allowed_mask, InterlockError)
    from iotlib._relay_bank_py import PyRelayBank

    return PyRelayBank(pins, active_low, interlocks, allowed_mask, InterlockError, pin_factory)
