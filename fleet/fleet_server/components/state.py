"""State: reported state (from the device) and desired state (from API callers), each versioned."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..admin_ops import set_desired
from ..auth import Principal
from ..context import AppContext, api_scope, authorized_device, get_ctx, get_principal
from ..errors import ApiError, responses
from ..storage import StaleVersion
from .readiness import storage_reachable

PATH = "/tenants/{tenant}/namespaces/{namespace}/devices/{device_id}/state"


class ReportedIn(BaseModel):
    reported: dict
    version: int = Field(ge=0, description="the version this report replaces (0 for the first)")


class ReportedOut(BaseModel):
    version: int
    desired: dict
    desired_version: int


class DesiredIn(BaseModel):
    desired: dict
    desired_version: Optional[int] = Field(
        None, ge=0, description="optional optimistic lock: the desired version this replaces")


class StateOut(BaseModel):
    desired: dict
    desired_version: int
    reported: dict
    version: int


def _device_on_path(ctx: AppContext, who: Principal, tenant: str, namespace: str, device_id: str) -> dict:
    if who.tenant != tenant or who.namespace != namespace:
        raise ApiError(403, "tenant/namespace mismatch")
    device = authorized_device(ctx, who, device_id)
    if device["tenant"] != tenant or device["namespace"] != namespace:
        raise ApiError(403, "device is bound to another tenant/namespace")
    return device


def _conflict(exc: StaleVersion) -> ApiError:
    return ApiError(409, f"stale version; current version is {exc.current}", version=exc.current)


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["state"])

    @router.put(PATH, response_model=ReportedOut, responses=responses(400, 401, 403, 404, 409))
    async def put_reported(tenant: str, namespace: str, device_id: str, body: ReportedIn,
                           ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """The device reports its state; `version` must be the current reported version."""
        if who.kind != "device":
            raise ApiError(403, "reported state comes from the device")
        _device_on_path(ctx, who, tenant, namespace, device_id)
        try:
            version = ctx.storage.put_reported(device_id, body.reported, body.version)
        except StaleVersion as exc:
            raise _conflict(exc)
        state = ctx.storage.get_state(device_id)
        return ReportedOut(version=version, desired=state["desired"], desired_version=state["desired_version"])

    @router.get(PATH, response_model=StateOut, responses=responses(401, 403, 404))
    async def get_state(tenant: str, namespace: str, device_id: str,
                        ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Desired and reported state with their versions."""
        _device_on_path(ctx, who, tenant, namespace, device_id)
        return ctx.storage.get_state(device_id)

    @router.put(PATH + "/desired", response_model=StateOut, responses=responses(400, 401, 403, 404, 409))
    async def put_desired(tenant: str, namespace: str, device_id: str, body: DesiredIn,
                          ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """An API caller with `state:write` sets the desired state (bumps desired_version)."""
        scope = api_scope(who, "state:write")
        _device_on_path(ctx, who, tenant, namespace, device_id)
        state = set_desired(ctx.storage, scope, device_id, body.desired, body.desired_version)
        state.pop("device_id")
        return state

    return router


ready = storage_reachable
