"""Updates: the manifest offered to a device, and artefact download with Range support."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from ..auth import Principal
from ..byte_range import Unsatisfiable, parse_range
from ..context import AppContext, authorized_device, get_ctx, get_principal
from ..errors import ApiError, responses
from ..rollouts import offered
from ..update_manifest import ManifestOut, pick_update, version_key
from .readiness import storage_reachable


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["updates"])

    @router.get("/devices/{device_id}/update", response_model=ManifestOut, response_model_exclude_none=True,
                responses={**responses(400, 401, 403, 404), 204: {"description": "nothing newer"}})
    async def check_update(device_id: str, request: Request,
                           version: str = Query(..., description="the device's current version, dotted numeric"),
                           ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """204 when nothing newer applies, else the newest manifest (a staged rollout's only to its canaries
        until promoted, and a halted one's to nobody)."""
        device = authorized_device(ctx, who, device_id)
        try:
            version_key(version)
        except ValueError as exc:
            raise ApiError(400, f"query.version: {exc}")
        rollouts = {r["artifact"]: r for r in ctx.storage.list_rollouts(device["tenant"])}  # oldest first: latest wins
        manifests = [m for m in ctx.storage.list_manifests(device["tenant"]) if offered(m, rollouts, device_id)]
        chosen = pick_update(manifests, version, device["role"])
        if chosen is None:
            return Response(status_code=204)
        base = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
        fields = {k: chosen[k] for k in ("kind", "version", "size", "sha256", "signature")}
        if chosen.get("min_version"):
            fields["min_version"] = chosen["min_version"]
        return ManifestOut(url=f"{base}/api/artifacts/{chosen['name']}", **fields)

    @router.get("/artifacts/{name}", response_class=Response,
                responses={**responses(401, 403, 404, 416),
                           200: {"content": {"application/octet-stream": {}}, "description": "the whole artefact"},
                           206: {"content": {"application/octet-stream": {}}, "description": "the requested range"}})
    async def get_artifact(name: str, range_header: str | None = Header(None, alias="Range"),
                           ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Download an artefact; honours a single `Range: bytes=a-b` (206, or 416 when unsatisfiable)."""
        info = ctx.storage.get_artifact_info(name)
        if info is None:
            raise ApiError(404, f"unknown artefact {name!r}")
        if info["tenant"] != who.tenant:
            raise ApiError(403, "artefact belongs to another tenant")
        size = info["size"]
        try:
            span = parse_range(range_header, size)
        except Unsatisfiable:
            err = ApiError(416, f"range not satisfiable for {size} bytes")
            err.headers = {"Content-Range": f"bytes */{size}"}
            raise err
        headers = {"Accept-Ranges": "bytes"}
        if span is None:
            return Response(ctx.storage.read_artifact(name, 0, size), media_type="application/octet-stream",
                            headers=headers)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(ctx.storage.read_artifact(name, start, end - start + 1), status_code=206,
                        media_type="application/octet-stream", headers=headers)

    return router


ready = storage_reachable
