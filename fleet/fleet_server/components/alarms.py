"""Alarms: devices post deduplicated batches; API callers list them for their tenant."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..auth import Principal, check_permission
from ..context import AppContext, authorized_device, get_ctx, get_principal
from ..errors import ApiError, responses
from .readiness import storage_reachable

Severity = Literal["info", "warning", "critical"]


class AlarmIn(BaseModel):
    type: str = Field(min_length=1, max_length=64)
    severity: Severity
    source: str = Field(min_length=1, max_length=64)
    count: int = Field(ge=1, le=2**31 - 1)
    first_seen: float = Field(ge=0, description="unix seconds")
    last_seen: float = Field(ge=0, description="unix seconds")
    message: Optional[str] = Field(None, max_length=256)


class AlarmBatchIn(BaseModel):
    device_id: str = Field(min_length=1)
    alarms: list[AlarmIn] = Field(max_length=256, description="a device batches at most a few dozen")
    dropped: int = Field(0, ge=0, description="alarms the device had to drop since its last batch")


class AcceptedOut(BaseModel):
    accepted: int


class AlarmOut(AlarmIn):
    device_id: str
    tenant: str
    namespace: str


class AlarmListOut(BaseModel):
    alarms: list[AlarmOut]
    dropped: dict[str, int] = Field(description="device id -> alarms dropped on the device, cumulative")


def make_router() -> APIRouter:
    router = APIRouter(tags=["alarms"])

    @router.post("/api/alarms", response_model=AcceptedOut, responses=responses(400, 401, 403, 404))
    async def post_alarms(body: AlarmBatchIn, ctx: AppContext = Depends(get_ctx),
                          who: Principal = Depends(get_principal)):
        """A device posts a batch; (device, type, source) is the dedup key: counts add, first/last seen widen."""
        if who.kind != "device":
            raise ApiError(403, "alarms are posted by devices")
        authorized_device(ctx, who, body.device_id)
        ctx.storage.merge_alarms(body.device_id, [a.model_dump() for a in body.alarms], body.dropped)
        return AcceptedOut(accepted=len(body.alarms))

    async def list_alarms(device_id: Optional[str] = Query(None), ctx: AppContext = Depends(get_ctx),
                          who: Principal = Depends(get_principal)):
        """API callers with `alarms:read` see their tenant's alarms; a device sees only its own."""
        if who.kind == "device":
            device_id = device_id or who.sub
            authorized_device(ctx, who, device_id)
        else:
            check_permission(who, "alarms:read")
            if device_id is not None:
                device = ctx.storage.get_device(device_id)
                if device is None:
                    raise ApiError(404, f"unknown device {device_id!r}")
                if device["tenant"] != who.tenant:
                    raise ApiError(403, "tenant mismatch")
        return AlarmListOut(alarms=ctx.storage.list_alarms(who.tenant, device_id),
                            dropped=ctx.storage.get_dropped(who.tenant, device_id))

    for path in ("/api/alarms", "/alarms/"):
        router.add_api_route(path, list_alarms, methods=["GET"], response_model=AlarmListOut,
                             responses=responses(401, 403, 404), name=f"list_alarms{path.replace('/', '_')}")
    return router


ready = storage_reachable
