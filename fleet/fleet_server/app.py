"""Build the FastAPI application from settings and a storage backend."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import __version__
from .background import Job, LeasedJobs, housekeeping_job
from .components import load_components
from .context import AppContext
from .alarm_lifecycle import AlarmLifecycle
from .errors import ErrorBody, install_error_handlers
from .fleet_gauges import FleetGauges
from .health import make_health_router
from .metrics import install_metrics
from .mtls_info import make_mtls_router
from .notify import Notifier
from .rollouts import RolloutManager
from .components.admin_tenant import ARTIFACT_UPLOAD_PATH, artifact_upload_limit
from .request_limits import install_request_limits
from .settings import Settings
from .storage import Storage
from .tls import TlsSetup

log = logging.getLogger("fleet.app")

DESCRIPTION = (
    "Reference fleet services for the Pico W IoT firmware. Errors are "
    '`{"error": "<code>", "detail": "<reason>"}`; validation errors are 400 with the field path. '
    "See docs/fleet-api.md."
)


def create_app(settings: Settings, storage: Storage, server_secret: str, replica_id: str = "local",
               tls: TlsSetup | None = None, tracer_provider=None) -> FastAPI:
    components = load_components(settings.enabled())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await ctx.notifier.start()
        log.info("started", extra={"components": [c.name for c in components]})
        jobs.start()
        yield
        await jobs.stop()
        await ctx.notifier.stop()
        storage.close()
        if tracer_provider is not None:
            tracer_provider.shutdown()  # flush the last spans
        log.info("stopped")

    app = FastAPI(title="fleet", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    ctx_storage = storage
    if tracer_provider is not None:  # requests and storage calls as spans of the caller's trace
        from .tracing import TracedStorage, install_tracing
        tracer = install_tracing(app, tracer_provider)
        ctx_storage = TracedStorage(storage, tracer, getattr(storage, "DB_SYSTEM", "unknown"))
    ctx = AppContext(settings=settings, storage=ctx_storage, server_secret=server_secret)
    ctx.notifier = Notifier(ctx_storage, settings.webhook_attempts, settings.webhook_backoff_s,
                            external_url=(settings.public_url or "").rstrip("/"))
    ctx.alarms = AlarmLifecycle(ctx_storage, ctx.notifier, settings.escalate_after_s)
    ctx.rollouts = RolloutManager(ctx_storage)
    app.state.ctx = ctx
    install_error_handlers(app)
    # inside the access log: 413s are logged
    install_request_limits(app, settings.max_body_bytes, {ARTIFACT_UPLOAD_PATH: artifact_upload_limit(settings)})
    registry = install_metrics(app)
    registry.register(FleetGauges(ctx))
    # periodic work that must happen once per fleet, not once per replica, runs under a lease
    jobs = LeasedJobs(storage, replica_id, [
        housekeeping_job(settings.housekeeping_interval_s, settings.nonce_grace_s),
        Job("alarm_escalation", settings.escalation_check_s, lambda _s: ctx.alarms.escalate_once()),
        Job("rollout_evaluation", settings.rollout_check_s, lambda _s: ctx.rollouts.evaluate_once()),
    ], registry)
    app.state.tls = tls  # None: plain HTTP
    app.include_router(make_health_router(components))
    app.include_router(make_mtls_router())
    for c in components:
        app.include_router(c.router)
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, with its 422 validation responses rewritten to the 400 we actually send."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
    for path_item in doc.get("paths", {}).values():
        for op in path_item.values():
            resp = op.get("responses", {})
            if resp.pop("422", None) is not None:
                resp.setdefault("400", {"description": "bad_request",
                                        "content": {"application/json": {
                                            "schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = doc
    return doc
