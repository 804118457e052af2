"""One error shape for every failure: {"error": code, "detail": reason} with the status code."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
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
    def __init__(self, status: int, detail: str, code: str | None = None, **extra):
        super().__init__(detail)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


def error_response(status: int, detail: str, code: str | None = None, headers=None, **extra) -> JSONResponse:
    body = {"error": code or CODES.get(status, "error"), "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def responses(*statuses: int) -> dict:
    """OpenAPI `responses=` entries for the error statuses a route can return."""
    out = {}
    for s in statuses:
        out[s] = {"model": ConflictBody if s == 409 else ErrorBody, "description": CODES.get(s, "error")}
    return out


def _field_path(loc) -> str:
    # drop FastAPI's "body"/"query" prefix only when it adds nothing; keep it otherwise for clarity
    return ".".join(str(p) for p in loc)


def validation_detail(exc_errors) -> str:
    parts = [f"{_field_path(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc_errors]
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error_response(exc.status, exc.detail, exc.code, headers=exc.headers or None, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        # the wire contract says 400, not FastAPI's 422, with the field path in the detail
        return error_response(400, validation_detail(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, detail, headers=getattr(exc, "headers", None))
