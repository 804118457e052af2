"""What every router needs, built once at start-up and reached through FastAPI dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .audit import Scope
from .auth import Principal, check_device_access, check_permission, verify_bearer
from .errors import ApiError
from .settings import Settings
from .storage import Storage


@dataclass
class AppContext:
    settings: Settings
    storage: Storage
    server_secret: str
    # the operator side's long-running parts (set by create_app; absent when only exporting OpenAPI)
    notifier: Any = None
    alarms: Any = None
    rollouts: Any = None


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


_bearer = HTTPBearer(auto_error=False, description="device token or API-caller token")


def get_principal(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise ApiError(401, "missing bearer token")
    ctx = get_ctx(request)
    who = verify_bearer(creds.credentials, ctx.server_secret, ctx.storage.get_tenant)
    tls = request.app.state.tls
    if tls is not None and who.kind == "device":  # mTLS: a device's certificate must be its tenant's
        tls.check_device(request.scope.get("client"), who.tenant)
    return who


def load_device(ctx: AppContext, device_id: str) -> dict:
    device = ctx.storage.get_device(device_id)
    if device is None:
        raise ApiError(404, f"unknown device {device_id!r}")
    return device


def authorized_device(ctx: AppContext, who: Principal, device_id: str) -> dict:
    """Load a device the caller may touch: 403 before 404 so a device cannot probe other ids."""
    if who.kind == "device" and who.sub != device_id:
        raise ApiError(403, "a device may only access its own resources")
    device = load_device(ctx, device_id)
    check_device_access(who, device)
    return device


def api_scope(who: Principal, permission: str) -> Scope:
    """An API caller holding `permission`, as the Scope admin operations act in."""
    check_permission(who, permission)
    return Scope(who.tenant, who.namespace, who.sub)
