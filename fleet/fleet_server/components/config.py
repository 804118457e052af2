"""Config: the versioned device configuration with ETag / If-None-Match."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from ..auth import Principal
from ..context import AppContext, authorized_device, get_ctx, get_principal
from ..errors import responses
from .readiness import storage_reachable


class ConfigOut(BaseModel):
    version: int
    config: dict


def etag_matches(if_none_match: str | None, version: int) -> bool:
    """True when any tag in If-None-Match (weak or strong, or *) names this version."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == str(version):
            return True
    return False


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["config"])

    @router.get("/devices/{device_id}/config", response_model=ConfigOut,
                responses={**responses(401, 403, 404), 304: {"description": "unchanged since the ETag"}})
    async def get_config(device_id: str, if_none_match: Optional[str] = Header(None),
                         ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Current configuration; `ETag: "<version>"`; 304 when If-None-Match names the current version."""
        authorized_device(ctx, who, device_id)
        version, config = ctx.storage.get_config(device_id)
        etag = f'"{version}"'
        if etag_matches(if_none_match, version):
            return Response(status_code=304, headers={"ETag": etag})
        return JSONResponse({"version": version, "config": config}, headers={"ETag": etag})

    return router


ready = storage_reachable
