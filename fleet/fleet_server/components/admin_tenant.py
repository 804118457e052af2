"""Admin API, tenant: roles and permissions, API key, tokens, update publishing, webhooks, audit log,
secret audit trail."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field, HttpUrl

from .. import admin_ops
from ..audit import record
from ..auth import Principal
from ..context import AppContext, api_scope, get_ctx, get_principal
from ..errors import ApiError, responses
from ..storage import NotFound

class TenantOut(BaseModel):
    tenant: str
    roles: dict[str, list[str]]


class RoleIn(BaseModel):
    permissions: list[Annotated[str, Field(pattern=admin_ops.PERMISSION_PATTERN)]] = Field(max_length=64)


class ApiKeyIn(BaseModel):
    grace_s: float = Field(0, ge=0, le=admin_ops.MAX_GRACE_S, allow_inf_nan=False,
                           description="seconds tokens signed with the old key stay valid (0, the default: "
                                       "refused at once, as for a leaked key)")


class ApiKeyOut(BaseModel):
    tenant: str
    api_key: str = Field(description="the new key: tokens minted from now on are signed with it")
    previous_key_accepted_until: float = Field(description="Unix time tokens signed with the old key stop "
                                                           "working (the rotation time when grace_s is 0)")


class TokenIn(BaseModel):
    role: str = Field(min_length=1, max_length=32)
    ttl_s: int = Field(3600, ge=1, le=30 * 24 * 3600)
    sub: Optional[str] = Field(None, min_length=1, max_length=64)


class TokenOut(BaseModel):
    token: str


class PublishIn(BaseModel):
    manifest: dict = Field(description='{"kind","version","size","sha256","signature","min_version"?,"role"?}')
    data_base64: str = Field(description="the artefact's bytes, base64")


class WebhookIn(BaseModel):
    url: HttpUrl
    secret: str = Field(min_length=16, max_length=128, description="HMAC key of X-Fleet-Signature")
    format: Literal["json", "alertmanager"] = "json"
    min_severity: Literal["info", "warning", "critical"] = "warning"


class WebhookOut(BaseModel):
    name: str
    url: str
    format: str
    min_severity: str


class AuditEntry(BaseModel):
    seq: int
    at: float
    tenant: str
    actor: str
    action: str
    target: str
    detail: dict


class AuditOut(BaseModel):
    entries: list[AuditEntry]


class SecretAuditEntry(BaseModel):
    seq: int
    at: float
    tenant: Optional[str]
    actor: str = Field(description='the process, or "<caller> via <process>" for an admin API call')
    action: str = Field(description="create_device_key, rotate_device_key, delete_device_key, create_tenant_key, "
                                    "rotate_api_key")
    subject: str = Field(description="device:<id> or tenant:<tenant>")
    detail: dict


class SecretAuditOut(BaseModel):
    audit: list[SecretAuditEntry] = Field(description="oldest first")


ARTIFACT_UPLOAD_PATH = "/api/admin/artifacts"


def artifact_upload_limit(settings) -> int:
    """The upload route's body limit: the artefact in base64 (4/3 of it) plus room for the manifest."""
    return settings.max_artifact_bytes * 4 // 3 + 16 * 1024


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api/admin", tags=["admin"])
    ctx_dep, who_dep = Depends(get_ctx), Depends(get_principal)

    @router.get("/tenant", response_model=TenantOut, responses=responses(401, 403, 404))
    async def get_tenant(ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """The caller's tenant and its role table (`tenant:admin`)."""
        return admin_ops.tenant_info(ctx.storage, api_scope(who, "tenant:admin"))

    @router.put("/tenant/roles/{role}", response_model=TenantOut, responses=responses(400, 401, 403, 404))
    async def set_role(role: str, body: RoleIn, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Create or replace a role's permissions (`tenant:admin`); applies to tokens minted afterwards."""
        return admin_ops.set_role(ctx.storage, api_scope(who, "tenant:admin"), role, body.permissions)

    @router.delete("/tenant/roles/{role}", response_model=TenantOut, responses=responses(401, 403, 404))
    async def delete_role(role: str, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Remove a role (`tenant:admin`)."""
        return admin_ops.delete_role(ctx.storage, api_scope(who, "tenant:admin"), role)

    @router.post("/tenant/api-key", response_model=ApiKeyOut, responses=responses(400, 401, 403, 404))
    async def rotate_api_key(body: Optional[ApiKeyIn] = None, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Rotate the tenant's API key (`tenant:admin`). Without a body or with `grace_s` 0 the old key is
        refused at once (every token signed with it, the caller's too); with `grace_s` > 0 tokens signed with
        either key are accepted until `previous_key_accepted_until`, so new tokens can be minted (`POST
        /api/admin/tokens` signs with the new key) and handed out without downtime. Devices verifying API
        tokens themselves must be given the new key too. Audited in the audit log and the secret audit trail."""
        grace_s = (body or ApiKeyIn()).grace_s
        return admin_ops.rotate_api_key(ctx.storage, api_scope(who, "tenant:admin"), grace_s)

    @router.post("/tokens", response_model=TokenOut, responses=responses(400, 401, 403, 404))
    async def mint_token(body: TokenIn, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Mint an API token of a tenant role for the caller's namespace (`tenant:admin`)."""
        return admin_ops.mint_token(ctx.storage, api_scope(who, "tenant:admin"), body.role, body.ttl_s, body.sub)

    @router.post(ARTIFACT_UPLOAD_PATH.removeprefix("/api/admin"), response_model=dict, status_code=201,
                 responses={**responses(400, 401, 403, 413), 409: {"description": "already published"}})
    async def publish(body: PublishIn, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Publish an update artefact and its manifest (`ota:admin`); refused when size or sha256 differ."""
        scope = api_scope(who, "ota:admin")
        try:
            data = base64.b64decode(body.data_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "body.data_base64: not valid base64")
        return admin_ops.publish(ctx.storage, scope, body.manifest, data)

    @router.get("/artifacts", response_model=list[dict], responses=responses(401, 403))
    async def list_artifacts(ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """The tenant's published manifests, oldest first (`ota:admin`)."""
        return ctx.storage.list_manifests(api_scope(who, "ota:admin").tenant)

    @router.put("/webhooks/{name}", response_model=WebhookOut, responses=responses(400, 401, 403))
    async def put_webhook(name: str, body: WebhookIn, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Create or replace an alarm webhook of the tenant (`tenant:admin`)."""
        scope = api_scope(who, "tenant:admin")
        hook = {"tenant": scope.tenant, "name": name, "url": str(body.url), "secret": body.secret,
                "format": body.format, "min_severity": body.min_severity}
        ctx.storage.put_webhook(hook)
        record(ctx.storage, scope.tenant, scope.actor, "webhook.set", name, url=hook["url"], format=body.format,
               min_severity=body.min_severity)
        return WebhookOut(**hook)

    @router.get("/webhooks", response_model=list[WebhookOut], responses=responses(401, 403))
    async def list_webhooks(ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """The tenant's webhooks, secrets left out (`tenant:admin`)."""
        return [WebhookOut(**h) for h in ctx.storage.list_webhooks(api_scope(who, "tenant:admin").tenant)]

    @router.delete("/webhooks/{name}", status_code=204, responses=responses(401, 403, 404))
    async def delete_webhook(name: str, ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """Remove a webhook (`tenant:admin`)."""
        scope = api_scope(who, "tenant:admin")
        try:
            ctx.storage.delete_webhook(scope.tenant, name)
        except NotFound:
            raise ApiError(404, f"unknown webhook {name!r}")
        record(ctx.storage, scope.tenant, scope.actor, "webhook.delete", name)

    @router.get("/audit", response_model=AuditOut, responses=responses(400, 401, 403))
    async def audit_log(action: Optional[str] = Query(None, description="action prefix, e.g. alarm."),
                        limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                        ctx: AppContext = ctx_dep, who: Principal = who_dep):
        """The tenant's audit log, newest first (`audit:read`)."""
        tenant = api_scope(who, "audit:read").tenant
        return AuditOut(entries=ctx.storage.list_audit(tenant, action, limit, offset))

    @router.get("/secrets/audit", response_model=SecretAuditOut, responses=responses(400, 401, 403))
    async def secret_audit(subject: Optional[str] = Query(None, description="e.g. device:pico-1, tenant:acme"),
                           limit: int = Query(200, ge=1, le=1000), ctx: AppContext = ctx_dep,
                           who: Principal = who_dep):
        """The secret audit trail of the tenant's keys and its devices' keys (`audit:read`): the newest `limit`
        entries, oldest first. Server-wide entries (master keys, re-sealing) are shown by `fleet-admin --db`
        only."""
        return admin_ops.secret_audit(ctx.storage, api_scope(who, "audit:read"), subject, limit)

    return router
