"""Admin API, devices: inventory, provisioning and de-provisioning, configuration, actions."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from .. import admin_ops
from ..auth import Principal
from ..context import AppContext, api_scope, get_ctx, get_principal
from ..errors import responses
from ..inventory import InventoryItem, InventoryPage, inventory_item, inventory_page


class ProvisionIn(BaseModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    role: Literal["relays", "sensors"]


class ProvisionOut(BaseModel):
    device_id: str
    device_key: str = Field(description="what to flash; shown once")
    tenant: str
    namespace: str
    api_key: str
    role: str


class ConfigSetOut(BaseModel):
    device_id: str
    version: int


class ActionIn(BaseModel):
    action: Literal["reboot", "refresh_token", "check_update"]


class ActionOut(BaseModel):
    device_id: str
    queued: str


class DeviceKeyIn(BaseModel):
    grace_s: float = Field(admin_ops.DEVICE_KEY_GRACE_S, ge=0, le=admin_ops.MAX_GRACE_S, allow_inf_nan=False,
                           description="seconds the old key still proves registration (0: refused at once)")


class DeviceKeyOut(BaseModel):
    device_id: str
    device_key: str = Field(description="the new key, to give the device; shown once")
    previous_key_accepted_until: float = Field(description="Unix time the old key stops being accepted")


class DeprovisionOut(BaseModel):
    device_id: str
    deprovisioned: bool


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api/admin", tags=["admin"])

    @router.get("/devices", response_model=InventoryPage, responses=responses(400, 401, 403))
    async def list_inventory(role: Optional[str] = Query(None), online: Optional[bool] = Query(None),
                             limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                             ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """The inventory of the caller's tenant and namespace (`devices:read`), in id order, filtered and paged."""
        scope = api_scope(who, "devices:read")
        return inventory_page(ctx.storage, scope.tenant, scope.namespace, ctx.settings.offline_after_s,
                              role=role, online=online, limit=limit, offset=offset)

    @router.get("/devices/{device_id}", response_model=InventoryItem, responses=responses(401, 403, 404))
    async def get_inventory_item(device_id: str, ctx: AppContext = Depends(get_ctx),
                                 who: Principal = Depends(get_principal)):
        """One device of the inventory (`devices:read`)."""
        device = admin_ops.scoped_device(ctx.storage, api_scope(who, "devices:read"), device_id)
        return inventory_item(ctx.storage, device, ctx.settings.offline_after_s)

    @router.post("/devices", response_model=ProvisionOut, status_code=201,
                 responses={**responses(400, 401, 403), 409: {"description": "already provisioned"}})
    async def provision(body: ProvisionIn, ctx: AppContext = Depends(get_ctx),
                        who: Principal = Depends(get_principal)):
        """Provision a device in the caller's tenant and namespace (`devices:admin`)."""
        return admin_ops.provision(ctx.storage, api_scope(who, "devices:admin"), body.id, body.role)

    @router.delete("/devices/{device_id}", response_model=DeprovisionOut, responses=responses(401, 403, 404))
    async def deprovision(device_id: str, ctx: AppContext = Depends(get_ctx),
                          who: Principal = Depends(get_principal)):
        """Remove a device and everything stored about it (`devices:admin`); its tokens stop working."""
        return admin_ops.deprovision(ctx.storage, api_scope(who, "devices:admin"), device_id)

    @router.put("/devices/{device_id}/config", response_model=ConfigSetOut, responses=responses(400, 401, 403, 404))
    async def set_config(device_id: str, config: dict = Body(..., description="a DeviceConfig"),
                         ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Validate and store a configuration (`config:write`); a 400 names the field path."""
        return admin_ops.set_config(ctx.storage, api_scope(who, "config:write"), device_id, config)

    @router.post("/devices/{device_id}/actions", response_model=ActionOut, responses=responses(400, 401, 403, 404))
    async def queue_action(device_id: str, body: ActionIn, ctx: AppContext = Depends(get_ctx),
                           who: Principal = Depends(get_principal)):
        """Queue an action for the next heartbeat reply (`devices:admin`)."""
        return admin_ops.queue_action(ctx.storage, api_scope(who, "devices:admin"), device_id, body.action)

    @router.post("/devices/{device_id}/key", response_model=DeviceKeyOut, responses=responses(400, 401, 403, 404))
    async def rotate_device_key(device_id: str, body: Optional[DeviceKeyIn] = None,
                                ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Rotate the device's key (`devices:admin`): the new key is returned once; the old one still
        registers the device until `previous_key_accepted_until` (`grace_s`, default a day), then is refused.
        Audited in the tenant's audit log and the secret audit trail."""
        grace_s = (body or DeviceKeyIn()).grace_s
        return admin_ops.rotate_device_key(ctx.storage, api_scope(who, "devices:admin"), device_id, grace_s)

    return router
