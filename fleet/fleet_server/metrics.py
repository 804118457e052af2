"""Prometheus request metrics per route template, method and status, in a per-app registry."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request, Response
from .errors import error_response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = logging.getLogger("fleet.access")


def install_metrics(app: FastAPI) -> CollectorRegistry:
    registry = CollectorRegistry()  # per app, so tests and embedders can build several apps
    app.state.metrics_registry = registry  # other parts (background jobs) add their metrics here
    requests = Counter("fleet_http_requests_total", "HTTP requests handled",
                       ["method", "route", "status"], registry=registry)
    latency = Histogram("fleet_http_request_duration_seconds", "HTTP request latency",
                        ["method", "route", "status"], registry=registry,
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            # a bug: still the one error shape, and still a line in the access log
            log.exception("unhandled error", extra={"method": request.method, "path": request.url.path})
            response = error_response(500, "internal error")
        elapsed = time.perf_counter() - start
        route = request.scope.get("route")
        # the template (/api/devices/{device_id}/config), never the raw path, keeps label cardinality bounded
        template = getattr(route, "path", "unmatched")
        status = str(response.status_code)
        requests.labels(request.method, template, status).inc()
        latency.labels(request.method, template, status).observe(elapsed)
        fields = {"method": request.method, "path": request.url.path,
                  "status": response.status_code, "ms": round(elapsed * 1000, 2)}
        if "range" in request.headers:  # shows where a resumed download picked up
            fields["range"] = request.headers["range"]
        log.info("request", extra=fields)
        return response

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics (text format)",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
