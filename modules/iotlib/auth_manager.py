# Device identity and API authorization: the device key (constructor or a file, re-read when
# the file changes), the device's own bearer token with its expiry and refresh, and JWT
# verification plus RBAC for callers of the device's REST/WebSocket API.
#
# Authorization rule: the token's role is looked up in the role table from configuration
# (rbac.roles; the built-in DEFAULT_ROLES until configuration arrives). A role missing from
# the table is denied; there is no fallback to the token's own `permissions` claim, which can
# only narrow what the role grants (if present, the permission must be listed there too).
#
# Time: tokens are checked against the device's Clock. Until it is trusted (SNTP answered)
# a token is refused with reason UNSYNCED (the API answers 503 + Retry-After), except one
# whose exp is already below the clock's lower bound: that is "expired" (401) before sync
# too. Tokens valid for longer than max_lifetime_s are refused ("lifetime", "too_far").
import asyncio
import os

from iotlib import jwt
from iotlib.clock import Clock
from iotlib.config_schema import DEFAULT_ROLES
from iotlib.task import BackgroundTask

UNSYNCED = "clock_not_synced"
# refusals that depend on where "now" is: before sync they mean "ask again later"
_TIME_DEPENDENT = ("not_yet_valid", "too_far")


def _read_key_file(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _file_signature(path):
    try:
        st = os.stat(path)
        return (st[6], st[8])  # size and mtime
    except OSError:
        return None


class VerifiedTokens:
    """A few verified tokens and their claims, each until its exp (+ leeway).

    Keyed by the whole token string, so a hit is an exact repeat of a token whose signature
    was checked; only tokens that verified are kept (refused ones cannot fill it). Bounded:
    when full, the entry expiring first makes room."""

    def __init__(self, max_tokens=8):
        self.max_tokens = max_tokens
        self._tokens = {}  # token -> (claims, valid_until)
        self._context = None

    def lookup(self, token, now, auth):
        """The claims cached for token, or None. `auth` is what verification depended on
        (its key, tenant, namespace, issuer, audience, leeway, longest lifetime): when any of it changed since
        the tokens were cached, none of them holds any more."""
        c = self._context
        if c is None or c[0] is not auth.api_key or c[1] != auth.tenant \
                or c[2] != auth.namespace or c[3] != auth.issuer or c[4] != auth.audience \
                or c[5] != auth.leeway_s or c[6] != auth.max_lifetime_s:
            self._tokens = {}
            self._context = (auth.api_key, auth.tenant, auth.namespace, auth.issuer,
                             auth.audience, auth.leeway_s, auth.max_lifetime_s)
            return None
        entry = self._tokens.get(token)
        if entry is None:
            return None
        if now > entry[1]:
            del self._tokens[token]
            return None
        return entry[0]

    def store(self, token, claims, valid_until):
        tokens = self._tokens
        if token not in tokens and len(tokens) >= self.max_tokens:
            first = None
            for t, entry in tokens.items():
                if first is None or entry[1] < tokens[first][1]:
                    first = t
            del tokens[first]
        tokens[token] = (claims, valid_until)

    def clear(self):
        self._tokens = {}


class AuthManager:
    def __init__(self, device_key=None, tenant=None, namespace=None, api_key=None,
                 key_file=None, roles=None, issuer="fleet", audience="iotlib", leeway_s=30,
                 clock=None, audit=None, refresh=None, refresh_margin_s=60, poll_s=5,
                 max_lifetime_s=86400):
        for name, value in (("device_key", device_key), ("tenant", tenant),
                            ("namespace", namespace), ("api_key", api_key)):
            if value is not None and not isinstance(value, str):
                raise TypeError("AuthManager: %s must be a string, not %s"
                                % (name, type(value).__name__))
        # the binding of a device built without one (`AuthManager("device_key")`, the seed's
        # way): provision it with `fleet-admin provision --tenant default --namespace default`
        # (literals, not module constants: a global costs heap on every image)
        self.tenant = tenant or "default"
        self.namespace = namespace or "default"
        # the tenant's key that signs API caller JWTs; without one, registration asks for it
        self.api_key = api_key
        self.key_file = key_file
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s  # longest exp - iat accepted
        self.clock = clock or Clock()
        self.audit = audit
        self.refresh = refresh  # async () -> (token, expires_at), e.g. re-registration
        self.refresh_margin_s = refresh_margin_s
        self.poll_s = poll_s
        self.roles = roles or DEFAULT_ROLES
        self._key = device_key
        self._key_sig = None
        self._token = None
        self._token_expires = 0
        self._task = BackgroundTask()
        # tokens that passed verify(), kept until they expire: a request with a token seen
        # before skips the HMAC, base64 and JSON work (RBAC still runs on every request)
        self._verified = VerifiedTokens()
        self.failures = None  # metric counter, set in register()
        if key_file:
            self.reload_key()

    # ---- device key -------------------------------------------------------------------------

    def device_key(self):
        return self._key

    def reload_key(self):
        """Re-read key_file if it changed since the last read; True when the key changed."""
        sig = _file_signature(self.key_file) if self.key_file else None
        if sig is None or sig == self._key_sig:
            return False
        self._key_sig = sig
        key = _read_key_file(self.key_file)
        if not key or key == self._key:
            return False
        self._key = key
        self._record("device_key_reloaded", {})
        return True

    # ---- the device's own token -------------------------------------------------------------

    def set_device_token(self, token, expires_at):
        self._token = token
        self._token_expires = expires_at

    def device_token(self):
        """The bearer token for fleet calls, or None when absent or expired. expires_at is on
        the clock's monotonic() scale (set by Registration), which SNTP steps do not move."""
        if self._token and self.clock.monotonic() < self._token_expires:
            return self._token
        return None

    def token_expires_in(self):
        return self._token_expires - self.clock.monotonic() if self._token else 0

    def needs_refresh(self):
        return self.token_expires_in() <= self.refresh_margin_s

    async def refresh_token(self):
        if self.refresh is None:
            return False
        token, expires_at = await self.refresh()
        self.set_device_token(token, expires_at)
        return True

    # ---- API caller tokens ------------------------------------------------------------------

    def set_roles(self, roles):
        self.roles = roles or DEFAULT_ROLES

    def on_config(self, changed, config):
        """ConfigManager subscriber: the role table follows configuration."""
        if "rbac" in changed:
            self.set_roles(config["rbac"].get("roles"))

    def issue(self, sub, role, ttl_s=3600, key=None, **claims):
        """Sign an API token for this device's tenant (tests, local tools)."""
        now = self.clock.time()
        body = {"sub": sub, "tenant": self.tenant, "namespace": self.namespace, "role": role,
                "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + ttl_s}
        body.update(claims)
        return jwt.encode(body, key or self.api_key)

    def verify(self, token):
        """Claims of a valid token for this device, or raise jwt.JWTError(reason)."""
        if not self.api_key:
            raise jwt.JWTError("no_key", "no API key configured")
        clock = self.clock
        now = clock.time()
        if clock.trusted:  # cached verdicts hold only against a synced clock
            cached = self._verified.lookup(token, now, self)
            if cached is not None:
                return cached
        try:
            claims = jwt.decode(token, self.api_key, now, issuer=self.issuer,
                                audience=self.audience, leeway_s=self.leeway_s,
                                max_lifetime_s=self.max_lifetime_s)
        except jwt.JWTError as e:
            if not clock.trusted and e.reason in _TIME_DEPENDENT:
                raise jwt.JWTError(UNSYNCED, "the device clock is not synced yet")
            raise
        if not clock.trusted:  # signed and not provably expired, but "now" is unknown
            raise jwt.JWTError(UNSYNCED, "the device clock is not synced yet")
        if self.tenant is not None and claims.get("tenant") != self.tenant:
            raise jwt.JWTError("tenant")
        if self.namespace is not None and claims.get("namespace") != self.namespace:
            raise jwt.JWTError("namespace")
        self._verified.store(token, claims, claims["exp"] + self.leeway_s)
        return claims


    def authorize(self, token, permission):
        """(allowed, reason, claims): reason is "ok" or why the request is refused."""
        claims = None
        try:
            claims = self.verify(token)
            reason = self._permits(claims, permission)
        except jwt.JWTError as e:
            reason = e.reason
        if reason != "ok" and self.failures is not None:
            # counted only: the API server summarises denials in their own trail
            # (iotlib.denial_log), so failed logins cannot flush the audit trail
            self.failures.inc(labels=(reason,))
        return reason == "ok", reason, claims

    def _permits(self, claims, permission):
        granted = self.roles.get(claims.get("role"))
        if granted is None:
            return "unknown_role"
        if permission not in granted:
            return "forbidden"
        narrowed = claims.get("permissions")
        if isinstance(narrowed, list) and permission not in narrowed:
            return "forbidden"
        return "ok"

    def _record(self, event, fields):
        if self.audit is not None:
            self.audit.record(event, **fields)

    # ---- lifecycle --------------------------------------------------------------------------

    def register(self, metrics, health):
        self.failures = metrics.counter("auth_failures_total", "Refused API tokens", ("reason",))
        metrics.gauge("device_token_expires_in_seconds", "Seconds left on the device token",
                      read=self.token_expires_in)
        health.add_check("device_key", lambda: (bool(self._key), "present" if self._key
                                                 else "missing"), required=True)

    async def start(self):
        self._task.start(self._run)

    async def stop(self):
        self._task.stop()

    async def _run(self):
        # watch the key file and keep the device token fresh
        while True:
            self.reload_key()
            if self._token and self.needs_refresh():
                try:
                    await self.refresh_token()
                except Exception as e:  # keep the old token; retry on the next poll
                    self._record("token_refresh_failed", {"error": str(e)})
            await asyncio.sleep(self.poll_s)
