# The HTTP server both roles share, built on Microdot.
#
# ApiServer owns one Microdot app and adds what every device endpoint needs:
#   /health/livez, /health/readyz, /metrics   (no token: probes and scrapers)
#   everything else: per-address limit -> token (Bearer header or ?token=) -> RBAC
#   permission and tenant/namespace (through the `auth` collaborator) -> per-token limit
#   JSON errors {"error": <code>, "detail": <text>} for every status Microdot produces.
# A role declares its routes with ApiServer.route(url, methods, permission).
import asyncio
import gc
import json

from microdot import Microdot, Request, Response

from iotlib.auth_manager import UNSYNCED

_REASONS = {200: b"OK", 204: b"No Content", 400: b"Bad Request", 401: b"Unauthorized",
            403: b"Forbidden", 404: b"Not Found", 405: b"Method Not Allowed",
            409: b"Conflict", 413: b"Payload Too Large", 429: b"Too Many Requests",
            500: b"Internal Server Error", 503: b"Service Unavailable"}
_HEAD_SIZE = 1024  # status line + headers + small bodies go out in one write from here

PUBLIC_PATHS = ("/health/livez", "/health/readyz", "/metrics")
RETRY_UNSYNCED_S = "5"  # seconds: SNTP answers within one round once the network is up
JSON_HEADERS = {"Content-Type": "application/json"}
_ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    429: "rate_limited", 500: "internal_error", 503: "unavailable",
}
# Reasons from AuthManager.authorize() that mean "valid token, but not here / not this"
# (403); every other reason (malformed, signature, expired, issuer, ...) is a 401.
_FORBIDDEN_WORDS = ("permission", "tenant", "namespace", "role", "forbidden")


def error(status, detail, headers=None):
    """A JSON error response: {"error": <short code>, "detail": <what to fix>}."""
    body = json.dumps({"error": _ERROR_CODES.get(status, "error"), "detail": detail})
    h = {"Content-Type": "application/json"}
    if headers:
        h.update(headers)
    return Response(body, status, h)


def bearer_token(request):
    """The API token from `Authorization: Bearer ...` or the `token` query parameter."""
    h = request.headers.get("Authorization")
    if h:
        if h.startswith("Bearer "):  # the usual spelling: one slice, no lowercase copy
            return h[7:].strip()  # strip() returns the same string when there is nothing to strip
        if h[:7].lower() == "bearer ":
            return h[7:].strip()
        return None
    return request.args.get("token")


class _App(Microdot):
    """Microdot with one change: a response leaves in a single write, as HTTP/1.1.

    Microdot writes the status line and each header with its own awrite (one syscall
    and a few allocations each) and says HTTP/1.0, which WebSocket clients refuse when
    reading a 401/403/503 in reply to an upgrade. Here the head and a small body are
    copied into one preallocated buffer; the connection still closes after the reply.
    Bodies that are not bytes (streams, generators) go through Microdot's own writer.
    """

    def __init__(self):
        super().__init__()
        self._head = bytearray(_HEAD_SIZE)
        self._head_mv = memoryview(self._head)

    async def handle_request(self, reader, writer):
        req = None
        try:
            req = await Request.create(self, reader, writer,
                                       writer.get_extra_info("peername"))
        except Exception:  # a broken or closed request: answered below with a 400
            pass
        res = await self.dispatch_request(req)
        try:
            if res is not Response.already_handled:
                n = self._compose(res)
                if n is None:
                    await res.write(writer)
                else:
                    await writer.awrite(self._head_mv[:n])
            await writer.aclose()
        except OSError:  # the client went away
            pass

    def _compose(self, res):
        """Lay the response into the head buffer; its length, or None when it won't fit.

        Runs without awaiting, so concurrent requests never share the buffer mid-write
        (the stream copies what it cannot send at once)."""
        res.complete()
        body = res.body
        if not isinstance(body, (bytes, bytearray)):
            return None
        buf = self._head
        n = _put(buf, 0, b"HTTP/1.1 %d " % res.status_code)
        n = _put(buf, n, _REASONS.get(res.status_code, b"Unknown"))
        n = _put(buf, n, b"\r\nConnection: close\r\n")
        for header, value in res.headers.items():
            for v in (value if isinstance(value, list) else (value,)):
                n = _put(buf, n, b"%s: %s\r\n" % (header, v))
        n = _put(buf, n, b"\r\n")
        if not res.is_head:
            n = _put(buf, n, body)
        return n if n >= 0 else None


def _put(buf, n, data):
    """Copy data into buf at n; -1 once the buffer has overflowed."""
    if n < 0 or n + len(data) > len(buf):
        return -1
    buf[n:n + len(data)] = data
    return n + len(data)


class ApiServer:
    """A Microdot app with auth, rate limits, health and metrics wired in.

    Collaborators (injected; the two registries are created when not given):
      auth    - AuthManager (or anything with authorize(token, permission) ->
                (allowed, reason, claims)); reasons about tenant, namespace, role or
                permission give 403, every other refusal 401.
      limits  - rate_limit.RequestLimits, or None for no limits.
      metrics - iotlib.metrics.Metrics served at /metrics (managers register into it).
      health  - iotlib.health.Health behind /health/livez and /health/readyz.
      logger  - optional logger with log(level, msg, fields).
    """

    def __init__(self, auth, limits=None, metrics=None, health=None, logger=None):
        self.auth = auth
        self.limits = limits
        if metrics is None:
            from iotlib.metrics import Metrics
            metrics = Metrics()
        if health is None:
            from iotlib.health import Health
            health = Health()
        self.metrics = metrics
        self.health = health
        self.logger = logger
        self.app = _App()
        self._permissions = {}  # route handler -> permission it needs
        self.started = False
        self._responses = metrics.counter("http_responses_total", "HTTP responses sent",
                                          ("status",))
        self._limited = metrics.counter("http_rate_limited_total",
                                        "Requests refused by a rate limit", ("by",))
        self._denied = metrics.counter("http_auth_denied_total",
                                       "Requests refused by authentication or RBAC",
                                       ("status",))
        metrics.gauge("heap_free_after_gc_bytes", "Free heap right after a collection",
                      read=_heap_after_gc)
        health.add_check("http_server", lambda: (self.started, "listening" if self.started
                                                 else "not listening"))
        self._install()

    # -- declaring routes ------------------------------------------------------------

    def route(self, url, methods=("GET",), permission=None):
        """Decorator: a route that needs `permission` (None: any valid token)."""
        def decorator(f):
            self.app.route(url, methods=list(methods))(f)
            self._permissions[f] = permission
            return f
        return decorator

    # -- the pieces every request goes through ----------------------------------------

    def _install(self):
        app = self.app
        server = self

        # The hooks are plain functions: Microdot calls them directly, no coroutine object
        # per request and hook.
        @app.before_request
        def guard(request):
            if request.path in PUBLIC_PATHS:
                return None
            limits = server.limits
            if limits is not None:
                wait = limits.by_address.take(request.client_addr[0])
                if wait:
                    server._limited.inc(labels=("address",))
                    return error(429, "too many requests from this address",
                                 {"Retry-After": str(wait)})
            token = bearer_token(request)
            if not token:
                server._denied.inc(labels=("401",))
                return error(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
            permission = server._permissions.get(request.route)
            allowed, reason, claims = server.auth.authorize(token, permission)
            if not allowed:
                if reason == UNSYNCED:  # tokens cannot be judged yet: come back
                    server._denied.inc(labels=("503",))
                    return error(503, reason, {"Retry-After": RETRY_UNSYNCED_S})
                if _forbidden(reason):
                    server._denied.inc(labels=("403",))
                    return error(403, reason)
                server._denied.inc(labels=("401",))
                return error(401, reason or "invalid token", {"WWW-Authenticate": "Bearer"})
            if limits is not None:
                wait = limits.by_token.take(hash(token))
                if wait:
                    server._limited.inc(labels=("token",))
                    return error(429, "too many requests for this token",
                                 {"Retry-After": str(wait)})
            request.g.claims = claims
            return None

        @app.after_request
        def count(request, response):
            server._responses.inc(labels=(response.status_code,))

        @app.after_error_request
        def count_error(request, response):
            server._responses.inc(labels=(response.status_code,))

        for status in (400, 404, 405, 413, 500):
            app.errorhandler(status)(_json_error_handler(status))

        @app.route("/health/livez")
        async def livez(request):
            ok, checks = server.health.livez()
            return _health_response(ok, checks)

        @app.route("/health/readyz")
        async def readyz(request):
            ok, checks = server.health.readyz()
            return _health_response(ok, checks)

        @app.route("/metrics")
        async def metrics(request):
            return Response(server.metrics.render(), 200,
                            {"Content-Type": "text/plain; version=0.0.4"})

    # -- running --------------------------------------------------------------------

    async def serve(self, host="0.0.0.0", port=80):
        """Serve until stop(); ready (health) once the socket listens."""
        task = asyncio.create_task(self.app.start_server(host=host, port=port))
        for _ in range(500):  # Microdot sets app.server once the socket listens
            if getattr(self.app, "server", None) is not None:
                break
            await asyncio.sleep_ms(10)
        self.started = True
        try:
            await task
        finally:
            self.started = False

    def stop(self):
        if getattr(self.app, "server", None) is not None:  # never served: nothing to stop
            self.app.shutdown()


def _heap_after_gc():
    gc.collect()
    return gc.mem_free()


def _forbidden(reason):
    if not reason:
        return False
    r = reason.lower()
    for w in _FORBIDDEN_WORDS:
        if w in r:
            return True
    return False


def _json_error_handler(status):
    detail = {400: "malformed request", 404: "no such endpoint", 405: "method not allowed",
              413: "request body too large", 500: "internal error"}[status]

    async def handler(request):
        return error(status, detail)
    return handler


def _health_response(ok, checks):
    return Response(json.dumps({"ok": ok, "checks": checks}), 200 if ok else 503, JSON_HEADERS)
