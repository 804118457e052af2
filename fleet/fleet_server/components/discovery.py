"""Discovery: challenge, registration (device proof -> device token + service URLs), heartbeat."""

from __future__ import annotations

import secrets
import time
from typing import Literal, Optional

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from ..auth import Principal, mint_device_token, proof_matches_any
from ..context import AppContext, authorized_device, get_ctx, get_principal
from ..errors import ApiError, responses
from .readiness import storage_reachable

SERVICE_NAMES = ("config", "state", "alarms", "updates")


class ChallengeOut(BaseModel):
    nonce: str = Field(description="32 hex chars, single use")
    expires_in: int


class RegisterIn(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    role: str = Field(min_length=1, max_length=32)
    firmware_version: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=1, max_length=64)
    port: int = Field(ge=0, le=65535)
    capabilities: list[str] = Field(default_factory=list, max_length=64)
    tenant: str = Field(min_length=1, max_length=64)
    namespace: str = Field(min_length=1, max_length=64)
    nonce: str = Field(min_length=1, max_length=64)
    proof: str = Field(min_length=1, max_length=128, description='hex(HMAC-SHA256(device_key, nonce + ":" + id))')
    want_api_key: bool = Field(False, description="true from a device built without its tenant's API key: "
                               "the reply carries it (the key that signs API tokens, which the device verifies)")


class RegisterOut(BaseModel):
    token: str
    expires_at: int
    expires_in: int
    services: dict[str, str] = Field(description="base URL per enabled service: config, state, alarms, updates")
    ntp_servers: list[str]
    heartbeat_s: int
    api_key: Optional[str] = Field(None, description="the tenant's current API key; only when want_api_key")


class HeartbeatIn(BaseModel):
    uptime_s: int = Field(ge=0)
    free_heap: int = Field(ge=0)
    health: dict = Field(description="free-form health report")
    boot_count: Optional[int] = Field(None, ge=0)
    firmware_version: Optional[str] = Field(None, max_length=32, description="the running version")
    image: Optional[dict] = Field(None, description='what the image is: {"wireless": bool, "variant": str}')
    safe_mode: Optional[bool] = Field(None, description="true while the loader runs the image in safe mode")
    ota: Optional[dict] = Field(None, description='OTA state: {"trial": bool, "version": str}')


class HeartbeatOut(BaseModel):
    ok: bool = True
    actions: list[Literal["reboot", "refresh_token", "check_update"]]


def _base_url(request: Request, ctx: AppContext) -> str:
    base = ctx.settings.public_url or str(request.base_url)
    return base.rstrip("/") + "/api"


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["discovery"])

    @router.post("/devices/{device_id}/challenge", response_model=ChallengeOut, responses=responses(400))
    async def challenge(device_id: str = Path(max_length=64), ctx: AppContext = Depends(get_ctx)):
        """Issue a single-use nonce for registration. Every id gets the same answer, so ids
        cannot be enumerated; only a provisioned device's nonce is stored (and it expires)."""
        nonce = secrets.token_hex(16)
        if ctx.storage.get_device(device_id) is not None:
            ctx.storage.put_nonce(nonce, device_id, time.time() + ctx.settings.nonce_ttl_s)
        return ChallengeOut(nonce=nonce, expires_in=ctx.settings.nonce_ttl_s)

    @router.post("/devices", response_model=RegisterOut, response_model_exclude_none=True,
                 responses=responses(400, 401, 403))
    async def register(body: RegisterIn, request: Request, ctx: AppContext = Depends(get_ctx)):
        """Register with a proof of the device key; returns a device token and the service URLs."""
        # the nonce is consumed whatever happens next: a failed attempt cannot be retried with it
        taken = ctx.storage.take_nonce(body.nonce)
        device = ctx.storage.get_device(body.id)
        if taken is None or device is None:
            raise ApiError(401, "unknown or already used nonce")
        nonce_device, expires_at = taken
        if nonce_device != body.id:
            raise ApiError(401, "nonce was issued to another device")
        if expires_at < time.time():
            raise ApiError(401, "nonce expired")
        if not proof_matches_any(device.get("device_keys") or [device["device_key"]], body.nonce, body.id, body.proof):
            raise ApiError(401, "wrong proof")
        # only after the proof: telling an impostor which binding is right would leak it
        if body.tenant != device["tenant"] or body.namespace != device["namespace"]:
            raise ApiError(403, "tenant/namespace differ from the provisioned binding")
        # the key signs every API token of the tenant: never in the clear unless the operator says
        # the network is trusted (a development fleet on plain HTTP)
        if body.want_api_key and request.url.scheme != "https" and not ctx.settings.api_key_over_http:
            raise ApiError(403, "want_api_key: the tenant's API key is sent only over HTTPS "
                                "(provision api_key in device.json, serve HTTPS, or set "
                                "api_key_over_http on a trusted network)")

        registration = body.model_dump(exclude={"nonce", "proof", "id", "tenant", "namespace", "want_api_key"})
        registration["registered_at"] = time.time()
        ctx.storage.update_registration(body.id, registration)

        ttl = ctx.settings.device_token_ttl_s
        token, exp = mint_device_token(ctx.server_secret, device, ttl)
        _, config = ctx.storage.get_config(body.id)
        base = _base_url(request, ctx)
        enabled = ctx.settings.enabled()
        return RegisterOut(
            token=token, expires_at=exp, expires_in=ttl,
            services={name: base for name in SERVICE_NAMES if name in enabled},
            ntp_servers=config.get("ntp_servers") or ctx.settings.ntp_servers,
            heartbeat_s=config.get("heartbeat_s", ctx.settings.heartbeat_s),
            # the same key provisioning prints for device.json, to a device that proved its own key
            api_key=ctx.storage.get_tenant(device["tenant"])["api_key"] if body.want_api_key else None,
        )

    @router.post("/devices/{device_id}/heartbeat", response_model=HeartbeatOut,
                 responses=responses(400, 401, 403, 404))
    async def heartbeat(device_id: str, body: HeartbeatIn, ctx: AppContext = Depends(get_ctx),
                        who: Principal = Depends(get_principal)):
        """Watchdog heartbeat; the reply carries actions queued by an operator (delivered once)."""
        if who.kind != "device":
            raise ApiError(403, "heartbeats come from devices")
        authorized_device(ctx, who, device_id)
        now = time.time()
        ctx.storage.record_heartbeat(device_id, dict(body.model_dump(exclude_none=True), received_at=now))
        ctx.storage.mark_seen(device_id, now)
        return HeartbeatOut(actions=ctx.storage.take_actions(device_id))

    return router


def ready(ctx: AppContext) -> None:
    storage_reachable(ctx)
    if not ctx.server_secret:
        raise RuntimeError("no device token secret")
