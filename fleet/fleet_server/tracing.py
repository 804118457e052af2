"""OpenTelemetry tracing for fleet-server: a span per request (continuing the caller's W3C
`traceparent`, and handing the request's own back in the response) and a child span per storage
call. Off unless an exporter is named:

    console      spans as JSON on stdout
    file:PATH    spans as JSON lines appended to PATH (what the tests read, one file per replica)
    otlp         OTLP over HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT (needs opentelemetry-exporter-otlp-proto-http)
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Sequence

from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor,
                                            SpanExporter, SpanExportResult)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


class JsonLinesExporter(SpanExporter):
    """One JSON object per finished span, appended to a file."""

    def __init__(self, path: str):
        self._fh = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            for span in spans:
                self._fh.write(json.dumps(json.loads(span.to_json(indent=None))) + "\n")
            self._fh.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._fh.close()


def make_provider(exporter: str, replica_id: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "fleet-server",
                                                        "service.instance.id": replica_id}))
    if exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    elif exporter.startswith("file:") and len(exporter) > 5:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(exporter[5:])))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ValueError(f"--trace-exporter otlp needs opentelemetry-exporter-otlp-proto-http ({exc})")
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        raise ValueError(f"unknown trace exporter {exporter!r} (console, file:PATH or otlp)")
    return provider


def install_tracing(app: FastAPI, provider: TracerProvider) -> trace.Tracer:
    """Server spans for every request; returns the tracer for storage spans."""
    tracer = provider.get_tracer("fleet_server")

    @app.middleware("http")
    async def _trace(request: Request, call_next):
        parent = _PROPAGATOR.extract(dict(request.headers))
        name = f"{request.method} {request.url.path}"
        with tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", request.method)
            response = await call_next(request)
            route = request.scope.get("route")
            if route is not None:  # the template keeps names few: POST /api/devices/{device_id}/heartbeat
                span.update_name(f"{request.method} {route.path}")
                span.set_attribute("http.route", route.path)
            span.set_attribute("http.response.status_code", response.status_code)
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)  # this request's span, so a caller can link its logs to it
            response.headers["traceparent"] = carrier["traceparent"]
            return response

    return tracer


class TracedStorage:
    """The storage handle with each public method call in a client span of the current trace."""

    def __init__(self, storage, tracer: trace.Tracer, system: str):
        self._storage, self._tracer, self._system = storage, tracer, system

    def __getattr__(self, name: str):
        attr = getattr(self._storage, name)
        if name.startswith("_") or not callable(attr):
            return attr

        @functools.wraps(attr)
        def traced(*args, **kwargs):
            with self._tracer.start_as_current_span(f"storage.{name}", kind=trace.SpanKind.CLIENT) as span:
                span.set_attribute("db.system", self._system)
                return attr(*args, **kwargs)

        return traced
