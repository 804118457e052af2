"""GET /mtls/info: whether this server speaks TLS, whether it asks for client certificates, what
the caller's own connection presented, and (with ?tenant=) that tenant's client CA."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from .errors import responses


class CaInfo(BaseModel):
    tenant: str
    subject: str
    sha256: str
    not_after: str


class MtlsInfoOut(BaseModel):
    tls: bool
    client_cert: str  # "off", "optional" or "required"
    presented: bool
    certificate_tenant: Optional[str] = None
    ca: Optional[CaInfo] = None


def make_mtls_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/mtls/info", response_model=MtlsInfoOut, response_model_exclude_none=True,
                responses=responses(404))
    async def mtls_info(request: Request, tenant: Optional[str] = Query(None, max_length=64)):
        """No auth: CA certificates and the server's TLS mode are public; a device uses this to check
        that the server accepted its client certificate and for which tenant."""
        tls = getattr(request.app.state, "tls", None)
        if tls is None:
            return MtlsInfoOut(tls=False, client_cert="off", presented=False)
        return tls.info(request.scope.get("client"), tenant)

    return router
