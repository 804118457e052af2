# Registration with service discovery: prove possession of the device key, receive a device
# token with its expiry, the URLs of the other fleet services, NTP servers and the heartbeat
# period. Re-registers when the token nears expiry or discovery asks ("refresh_token").
#
# Wire contract (docs/fleet-api.md):
#   POST {sd}/devices/{id}/challenge          -> {"nonce", "expires_in"}
#   POST {sd}/devices  {id, role, ..., nonce, proof = hex(HMAC-SHA256(key, nonce + ":" + id))}
#                                             -> {"token", "expires_at", "expires_in",
#                                                 "services", "ntp_servers", "heartbeat_s"}
# An AuthManager built without the tenant's API key (the seed's `AuthManager("device_key")`)
# asks for it ("want_api_key"), and goes on asking at every registration once it holds a
# fetched key (auth.api_key_fetched), so it follows a key rotation too.
import time

try:
    from iotlib.jwt import hmac_sha256
except ImportError:  # a stripped image without the JWT helper: same HMAC, written out here
    import hashlib

    def hmac_sha256(key, msg):
        key = key.encode() if isinstance(key, str) else key
        msg = msg.encode() if isinstance(msg, str) else msg
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key + b"\x00" * (64 - len(key))
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        inner.update(msg)
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        outer.update(inner.digest())
        return outer.digest()


class RegistrationError(OSError):
    """Discovery refused or could not be reached; `status` is the HTTP status (0: no reply)."""

    def __init__(self, status, detail):
        super().__init__("registration failed (%d): %s" % (status, detail))
        self.status = status


def hexlify(data):
    return "".join("%02x" % b for b in data)


def proof(device_key, nonce, device_id):
    """hex(HMAC-SHA256(device_key, nonce + ":" + device_id)), the key never leaves the device."""
    return hexlify(hmac_sha256(device_key, nonce + ":" + device_id))


def _key_of(auth):
    key = getattr(auth, "device_key", None)
    return key() if callable(key) else key


def _build_defaults():
    try:
        from iotlib.buildinfo import build_info
        info = build_info()
        return info.get("variant", "none").lower(), info.get("version", "0.0.0")
    except Exception:
        return "none", "0.0.0"


class Registration:
    def __init__(self, discovery_url, auth, device_id, role=None, firmware_version=None,
                 address="0.0.0.0", port=80, capabilities=(), http=None, clock=None,
                 refresh_margin_s=60):
        role_default, version_default = _build_defaults()
        self.url = discovery_url.rstrip("/")
        self.auth = auth
        self.device_id = device_id
        self.role = role or role_default
        self.firmware_version = firmware_version or version_default
        self.address = address
        self.port = port
        self.capabilities = list(capabilities)
        if http is None:  # built the seed's way
            from iotlib.seed_defaults import http_client
            http = http_client(auth)
        self.http = http
        self.clock = clock or getattr(auth, "clock", None)
        self.refresh_margin_s = refresh_margin_s
        self.services = {}      # config/state/alarms/updates -> base URL
        self.ntp_servers = []
        self.heartbeat_s = None
        self.expires_at = 0
        self.count = 0          # successful registrations since boot
        self._listeners = []
        # AuthManager calls this to refresh its token when it nears expiry
        if hasattr(auth, "refresh") and getattr(auth, "refresh", None) is None:
            auth.refresh = self._refresh_pair

    def _now(self):
        # the token's expiry is our own deadline: on the clock that SNTP steps do not move
        return self.clock.monotonic() if self.clock is not None else int(time.time())

    def on_registered(self, fn):
        """fn(reply) after every successful registration (services may have moved)."""
        self._listeners.append(fn)

    @property
    def registered(self):
        return self.expires_at > self._now()

    def needs_refresh(self):
        return self.expires_at - self._now() <= self.refresh_margin_s

    def service(self, name, default=None):
        """The base URL discovery gave for `name` (config, state, alarms, updates): the
        fleet-facing managers ask at each call, so a move on re-registration just works."""
        return self.services.get(name, default)

    async def register(self):
        """Challenge, prove, register; store the token in auth; return discovery's reply."""
        key = _key_of(self.auth)
        if not key:
            raise RegistrationError(0, "no device key")
        r = await self.http.request("POST", "%s/devices/%s/challenge" % (self.url, self.device_id),
                                    json={})
        if r.status != 200:
            raise RegistrationError(r.status, r.body[:120])
        nonce = r.json()["nonce"]
        body = {
            "id": self.device_id, "role": self.role, "firmware_version": self.firmware_version,
            "address": self.address, "port": self.port, "capabilities": self.capabilities,
            "tenant": getattr(self.auth, "tenant", None), "namespace": getattr(self.auth, "namespace", None),
            "nonce": nonce, "proof": proof(key, nonce, self.device_id),
        }
        auth = self.auth
        want_key = not getattr(auth, "api_key", True) or getattr(auth, "api_key_fetched", False)
        if want_key:
            body["want_api_key"] = True
        r = await self.http.request("POST", self.url + "/devices", json=body)
        if r.status != 200:
            raise RegistrationError(r.status, r.body[:120])
        reply = r.json()
        # expiry on our own clock: the device's wall clock may not be synced yet
        self.expires_at = self._now() + int(reply.get("expires_in", 0)) or reply["expires_at"]
        self.auth.set_device_token(reply["token"], self.expires_at)
        if want_key and reply.get("api_key"):
            auth.api_key = reply["api_key"]
            auth.api_key_fetched = True  # set only here: a provisioned key is never replaced
        services = reply.get("services") or {}
        for name in services:  # once here, not at every call that asks service(name)
            services[name] = services[name].rstrip("/")
        self.services = services
        self.ntp_servers = reply.get("ntp_servers") or []
        self.heartbeat_s = reply.get("heartbeat_s")
        self.count += 1
        for fn in self._listeners:
            fn(reply)
        return reply

    async def ensure(self):
        """Register when there is no token or it is about to expire; True if it registered."""
        if self.needs_refresh():
            await self.register()
            return True
        return False

    async def _refresh_pair(self):
        await self.register()
        return self.auth.device_token(), self.expires_at
