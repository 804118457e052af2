# The HTTP server both roles share, built on Microdot.
#
# ApiServer owns one Microdot app and adds what every device endpoint needs:
#   /health/livez, /health/readyz, /metrics   (no token: probes and scrapers)
#   everything else: per-address limit -> token (Bearer header; ?token= on a WebSocket
#   upgrade only) -> RBAC permission and tenant/namespace (through the `auth`
#   collaborator) -> per-token limit. Refusals are counted; through `denials` they are
#   summarised in their own audit trail, never the command trail.
#   JSON errors {"error": <code>, "detail": <text>} for every status Microdot produces.
# Connections (bounds, deadlines, the one-write response) are iotlib.http_server's job.
# A role declares its routes with ApiServer.route(url, methods, permission).
import asyncio
import gc
import json

from iotlib.http_server import ConnectionLimits, HttpServer, Response, error  # noqa: F401

from iotlib.auth_manager import UNSYNCED

PUBLIC_PATHS = ("/health/livez", "/health/readyz", "/metrics")
RETRY_UNSYNCED_S = "5"  # seconds: SNTP answers within one round once the network is up
JSON_HEADERS = {"Content-Type": "application/json"}
# Reasons from AuthManager.authorize() that mean "valid token, but not here / not this"
# (403); every other reason (malformed, signature, expired, issuer, ...) is a 401.
_FORBIDDEN_WORDS = ("permission", "tenant", "namespace", "role", "forbidden")


def bearer_token(request):
    """The API token from `Authorization: Bearer ...`; the `token` query parameter only on
    a WebSocket upgrade (browsers cannot set headers there; anywhere else a token in the
    URL ends up in proxy logs and browser history for nothing)."""
    h = request.headers.get("Authorization")
    if h:
        if h.startswith("Bearer "):  # the usual spelling: one slice, no lowercase copy
            return h[7:].strip()  # strip() returns the same string when there is nothing to strip
        if h[:7].lower() == "bearer ":
            return h[7:].strip()
        return None
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return request.args.get("token")
    return None


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
      denials - optional iotlib.denial_log.DenialLog: note(reason, address, sub) for every
                401/403 (rate-limited audit lines).
      connections - http_server.ConnectionLimits (the board-sized defaults when None).
    """

    def __init__(self, auth, limits=None, metrics=None, health=None, logger=None,
                 denials=None, connections=None):
        self.auth = auth
        self.limits = limits
        self.denials = denials
        if metrics is None:
            from iotlib.metrics import Metrics
            metrics = Metrics()
        if health is None:
            from iotlib.health import Health
            health = Health()
        self.metrics = metrics
        self.health = health
        self.logger = logger
        self.app = app = HttpServer(connections)
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
        metrics.gauge("http_connections", "Connections holding a slot", read=app.busy)
        metrics.counter("http_connections_refused_total", "Connections refused: every slot "
                        "serving", read=lambda: app.refused)
        metrics.counter("http_connections_evicted_total", "Waiting connections closed for a "
                        "newcomer", read=lambda: app.evicted)
        metrics.counter("http_timeouts_total", "Connections closed at an idle, head, body "
                        "or write deadline", read=lambda: app.timeouts)
        metrics.counter("http_rejected_total", "Requests refused before dispatch (400, 411, "
                        "413, 414, 431)", read=lambda: app.rejected)
        metrics.counter("http_errors_total", "Exceptions answered with a 500 or a close",
                        read=lambda: app.errors)
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
                server._deny(request, "401", "missing_token", None)
                return error(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
            permission = server._permissions.get(request.route)
            allowed, reason, claims = server.auth.authorize(token, permission)
            if not allowed:
                if reason == UNSYNCED:  # tokens cannot be judged yet: come back
                    server._denied.inc(labels=("503",))
                    return error(503, reason, {"Retry-After": RETRY_UNSYNCED_S})
                sub = claims.get("sub") if claims else None
                if _forbidden(reason):
                    server._deny(request, "403", reason, sub)
                    return error(403, reason)
                server._deny(request, "401", reason, sub)
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

    def _deny(self, request, status, reason, sub):
        self._denied.inc(labels=(status,))
        if self.denials is not None:
            self.denials.note(reason, request.client_addr[0], sub)

    # -- running --------------------------------------------------------------------

    async def serve(self, host="0.0.0.0", port=80):
        """Serve until stop(); ready (health) once the socket listens."""
        task = asyncio.create_task(self.app.start_server(host=host, port=port))
        for _ in range(500):  # HttpServer.start_server sets app.server once listening
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
