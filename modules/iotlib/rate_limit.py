# Token buckets keyed by API token and by client address (HTTP and WebSocket).
#
# Integer arithmetic only (milli-tokens, ticks_ms), so a check allocates nothing once a
# key has its bucket: small ints are not heap objects on MicroPython. The table is bounded
# (max_keys); when full, the least recently used bucket is recycled, which can only ever
# be more lenient to a client that stopped sending, never stricter.
import time

_MILLI = 1000


class RateLimiter:
    """One family of token buckets: `rate` tokens per second, at most `burst` stored."""

    def __init__(self, rate, burst, max_keys=32):
        self.max_keys = max_keys
        self._buckets = {}  # key -> [milli_tokens, last_ticks_ms]
        self.limited = 0  # requests refused since start (for metrics)
        self.configure(rate, burst)

    def configure(self, rate, burst):
        """Change the rate (tokens/s, > 0) and burst (>= 1); existing buckets keep their level."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._cap = int(burst * _MILLI)
        # milli-tokens gained per millisecond, kept as rate (tokens/s) == milli-tokens/ms
        self._per_ms = rate

    def _bucket(self, key, now):
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                oldest_key = None
                oldest_age = -1
                for k, v in self._buckets.items():
                    age = time.ticks_diff(now, v[1])
                    if age > oldest_age:
                        oldest_key, oldest_age = k, age
                b = self._buckets.pop(oldest_key)
                b[0] = self._cap
                b[1] = now
            else:
                b = [self._cap, now]
            self._buckets[key] = b
        return b

    def take(self, key):
        """Take one token for `key`: 0 when allowed, else the seconds to wait (>= 1)."""
        now = time.ticks_ms()
        b = self._bucket(key, now)
        elapsed = time.ticks_diff(now, b[1])
        if elapsed > 0:
            level = b[0] + int(elapsed * self._per_ms)
            b[0] = level if level < self._cap else self._cap
            b[1] = now
        if b[0] >= _MILLI:
            b[0] -= _MILLI
            return 0
        self.limited += 1
        missing_ms = int((_MILLI - b[0]) / self._per_ms)  # ms until one whole token
        return (missing_ms + 999) // 1000 or 1  # whole seconds, rounded up

    def forget(self, key):
        self._buckets.pop(key, None)

    def __len__(self):
        return len(self._buckets)


class RequestLimits:
    """The two limits every API request passes: per client address, then per token."""

    def __init__(self, per_token_rps=10, per_address_rps=20, burst=20, max_keys=32):
        self.by_address = RateLimiter(per_address_rps, burst, max_keys)
        self.by_token = RateLimiter(per_token_rps, burst, max_keys)

    def configure(self, section):
        """Apply a `rate_limit` config section ({"per_token_rps", "per_address_rps", "burst"})."""
        burst = section.get("burst", self.by_token.burst)
        self.by_address.configure(section.get("per_address_rps", self.by_address.rate), burst)
        self.by_token.configure(section.get("per_token_rps", self.by_token.rate), burst)

    @property
    def limited(self):
        return self.by_address.limited + self.by_token.limited
