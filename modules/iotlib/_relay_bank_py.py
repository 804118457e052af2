# Pure-Python RelayBank for a MicroPython without _iotlib: same checks, same errors.
# Pins change one Pin.value() call at a time here; only the C path is same-cycle.


class PyRelayBank:
    def __init__(self, pins, active_low, interlocks, allowed_mask, lock_error, pin_factory=None):
        if not isinstance(pins, dict):
            raise TypeError("pins must be a dict")
        allowed = allowed_mask & (0x007FFFFF | 0x1C000000)
        used = 0
        for name, gpio in pins.items():
            if not isinstance(name, str):
                raise TypeError("relay names must be str")
            if gpio < 0 or gpio > 29 or not allowed & (1 << gpio):
                raise ValueError("pin %d not allowed" % gpio)
            if used & (1 << gpio):
                raise ValueError("pin %d used twice" % gpio)
            used |= 1 << gpio
        self._pins = dict(pins)
        self._low = set()
        for name in active_low:
            self._check(name)
            self._low.add(name)
        self._locks = []
        for pair in interlocks:
            a, b = pair
            self._check(a)
            self._check(b)
            self._locks.append((a, b))
        self._lock_error = lock_error or ValueError
        if pin_factory is None:  # the hardware's output pins (iotlib.hal: machine.Pin on rp2)
            from iotlib.hal import load
            pin_factory = load().pin
        factory = pin_factory
        # OFF level given at construction, so the pin never glitches ON.
        self._out = {n: factory(g, 1 if n in self._low else 0) for n, g in pins.items()}
        self._on = {n: False for n in pins}

    def _check(self, name):
        if name not in self._pins:
            if isinstance(name, str):
                raise ValueError("unknown relay %s" % name)
            raise ValueError("unknown relay")

    def write(self, changes):
        if not isinstance(changes, dict):
            raise TypeError("changes must be a dict")
        for name in changes:
            self._check(name)
        new = dict(self._on)
        for name, on in changes.items():
            new[name] = bool(on)
        for a, b in self._locks:
            if new[a] and new[b]:
                raise self._lock_error("interlock: %s and %s cannot both be on" % (a, b))
        for name, on in changes.items():
            self._out[name].value(bool(on) != (name in self._low))
        self._on = new

    def read(self):
        return {n: bool(p.value()) != (n in self._low) for n, p in self._out.items()}

    def mask(self):
        bits = 0
        for gpio in self._pins.values():
            bits |= 1 << gpio
        return bits

    def all_off(self):
        """Every relay OFF, in one write."""
        self.write({name: False for name in self._pins})

    def apply_safe(self, states):
        """Exactly `states` (name -> bool), every relay not named OFF, in one write."""
        if not isinstance(states, dict):
            raise TypeError("changes must be a dict")
        full = {name: False for name in self._pins}
        for name in states:
            self._check(name)
            full[name] = bool(states[name])
        self.write(full)
