"""Bounds every request body before a route sees it, whatever the route's model says.

- A body longer than `max_body_bytes` is refused with 413 in the one error shape, from
  its Content-Length when it has one, else as soon as the streamed bytes pass the limit.
  A few routes that carry files (the admin API's artefact upload) have a limit of their own.
- A JSON body with an integer outside SQLite's 64-bit range, or a number too large to be
  finite, is refused with 400 naming the field: no route's model can forget an upper
  bound and end in an OverflowError deep in the storage layer.
"""

from __future__ import annotations

import json
import math

from .errors import error_response

INT64 = (-(2**63), 2**63 - 1)


class BodyTooLarge(Exception):
    pass


def out_of_range(value, path: str = "") -> str | None:
    """The path of the first number no column can hold ("alarms.0.count"), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT64[0] <= value <= INT64[1] else path or "body"
    if isinstance(value, float):
        return None if math.isfinite(value) else path or "body"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        bad = out_of_range(item, f"{path}.{key}" if path else str(key))
        if bad:
            return bad
    return None


class RequestLimits:
    """Pure ASGI middleware (the body is read once, bounded, then replayed to the app)."""

    def __init__(self, app, max_body_bytes: int, route_limits: dict[str, int] | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.route_limits = route_limits or {}  # exact path -> its own limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length")
        limit = self.route_limits.get(scope.get("path"), self.max_body_bytes)
        too_large = error_response(413, f"request body larger than {limit} bytes")
        if length is not None and length.isdigit() and int(length) > limit:
            return await too_large(scope, receive, send)
        try:
            body = await self._read(receive, limit)
        except BodyTooLarge:
            return await too_large(scope, receive, send)
        if body and b"json" in headers.get(b"content-type", b"json"):
            try:
                bad = out_of_range(json.loads(body))
            except (ValueError, RecursionError):
                bad = None  # not JSON: the route's own validation answers that
            if bad:
                return await error_response(400, f"{bad}: number out of range")(scope, receive, send)

        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # e.g. http.disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    @staticmethod
    async def _read(receive, limit: int) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def install_request_limits(app, max_body_bytes: int, route_limits: dict[str, int] | None = None) -> None:
    app.add_middleware(RequestLimits, max_body_bytes=max_body_bytes, route_limits=route_limits)
