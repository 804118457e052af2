"""Alarms: devices post deduplicated batches (and clear what is gone); API callers list, acknowledge, clear."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..auth import Principal, check_permission
from ..context import AppContext, api_scope, authorized_device, get_ctx, get_principal
from ..admin_ops import scoped_device
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


class AlarmKey(BaseModel):
    type: str = Field(min_length=1, max_length=64)
    source: str = Field(min_length=1, max_length=64)


class AlarmBatchIn(BaseModel):
    device_id: str = Field(min_length=1)
    alarms: list[AlarmIn] = Field(max_length=256, description="a device batches at most a few dozen")
    dropped: int = Field(0, ge=0, description="alarms the device had to drop since its last batch")
    cleared: list[AlarmKey] = Field(default_factory=list, max_length=64,
                                    description="conditions gone on the device: their alarms clear")


class AlarmActionIn(AlarmKey):
    device_id: str = Field(min_length=1)


class AcceptedOut(BaseModel):
    accepted: int


class AlarmOut(AlarmIn):
    device_id: str
    tenant: str
    namespace: str
    status: Literal["open", "acknowledged", "cleared"]
    opened_at: float = Field(description="when it (re)opened")
    changed_at: Optional[float] = Field(None, description="last status change")
    changed_by: Optional[str] = Field(None, description="device, escalation or the operator's token subject")
    escalation: int = Field(description="escalation level reached (0: none)")


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
        alarms = [a.model_dump() for a in body.alarms]
        ctx.storage.merge_alarms(body.device_id, alarms, body.dropped)
        if ctx.alarms is not None:
            ctx.alarms.on_batch(body.device_id, alarms, [c.model_dump() for c in body.cleared])
        return AcceptedOut(accepted=len(body.alarms))

    async def list_alarms(device_id: Optional[str] = Query(None),
                          status: Optional[Literal["open", "acknowledged", "cleared"]] = Query(None),
                          ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
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
        return AlarmListOut(alarms=ctx.storage.list_alarm_records(who.tenant, device_id, [status] if status else None),
                            dropped=ctx.storage.get_dropped(who.tenant, device_id))

    for path in ("/api/alarms", "/alarms/"):
        router.add_api_route(path, list_alarms, methods=["GET"], response_model=AlarmListOut,
                             responses=responses(401, 403, 404), name=f"list_alarms{path.replace('/', '_')}")

    @router.post("/api/admin/alarms/acknowledge", response_model=AlarmOut, tags=["admin"],
                 responses={**responses(400, 401, 403, 404), 409: {"description": "not open"}})
    async def acknowledge(body: AlarmActionIn, ctx: AppContext = Depends(get_ctx),
                          who: Principal = Depends(get_principal)):
        """Acknowledge an open alarm (`alarms:write`): it stops escalating; audited and notified."""
        scoped_device(ctx.storage, api_scope(who, "alarms:write"), body.device_id)
        return ctx.alarms.acknowledge(body.device_id, body.type, body.source, who.sub)

    @router.post("/api/admin/alarms/clear", response_model=AlarmOut, tags=["admin"],
                 responses={**responses(400, 401, 403, 404), 409: {"description": "already cleared"}})
    async def clear(body: AlarmActionIn, ctx: AppContext = Depends(get_ctx),
                    who: Principal = Depends(get_principal)):
        """Clear an alarm (`alarms:write`); it reopens when the device reports it again."""
        scoped_device(ctx.storage, api_scope(who, "alarms:write"), body.device_id)
        return ctx.alarms.clear(body.device_id, body.type, body.source, who.sub)

    return router


ready = storage_reachable
