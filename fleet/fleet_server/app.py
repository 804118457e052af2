"""Build the FastAPI application from settings and a storage backend."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import __version__
from .background import LeasedJobs, housekeeping_job
from .components import load_components
from .context import AppContext
from .errors import ErrorBody, install_error_handlers
from .health import make_health_router
from .metrics import install_metrics
from .mtls_info import make_mtls_router
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
        log.info("started", extra={"components": [c.name for c in components]})
        jobs.start()
        yield
        await jobs.stop()
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
    app.state.ctx = AppContext(settings=settings, storage=ctx_storage, server_secret=server_secret)
    install_error_handlers(app)
    install_metrics(app)
    jobs = LeasedJobs(storage, replica_id, [housekeeping_job(settings.housekeeping_interval_s)],
                      app.state.metrics_registry)
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
