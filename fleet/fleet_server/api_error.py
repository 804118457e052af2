"""Error values shared by the HTTP layer and the admin CLI (no web framework imported here)."""

from __future__ import annotations

from pydantic import BaseModel

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    416: "range_not_satisfiable",
    500: "internal",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    error: str
    detail: str


class ConflictBody(ErrorBody):
    version: int


class ApiError(Exception):
    """Raised by handlers; rendered as {"error", "detail", **extra} with `status`."""

    def __init__(self, status: int, detail: str, code: str | None = None, **extra):
        super().__init__(detail)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


def validation_detail(errors) -> str:
    """pydantic errors as "field.path: reason; ..." so the caller sees which field is wrong."""
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors]
    return "; ".join(parts) or "invalid request"
