"""One error shape for every failure: {"error": code, "detail": reason} with the status code."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .api_error import CODES, ApiError, ConflictBody, ErrorBody, validation_detail

__all__ = ["ApiError", "ErrorBody", "error_response", "install_error_handlers", "responses"]


def error_response(status: int, detail: str, code: str | None = None, headers=None, **extra) -> JSONResponse:
    body = {"error": code or CODES.get(status, "error"), "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def responses(*statuses: int) -> dict:
    """OpenAPI `responses=` entries for the error statuses a route can return."""
    return {s: {"model": ConflictBody if s == 409 else ErrorBody, "description": CODES.get(s, "error")}
            for s in statuses}


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
