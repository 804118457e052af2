"""/health/livez (the process answers) and /health/readyz (each enabled component's dependencies)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .components import Component
from .context import AppContext, get_ctx

log = logging.getLogger("fleet.health")


class LiveOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    status: str
    checks: dict[str, str]


def make_health_router(components: list[Component]) -> APIRouter:
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/livez", response_model=LiveOut)
    async def livez():
        return {"status": "ok"}

    @router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
    async def readyz(ctx: AppContext = Depends(get_ctx)):
        checks = {}
        for c in components:
            try:
                c.ready(ctx)
                checks[c.name] = "ok"
            except Exception as exc:  # any failure means not ready; the reason goes to the body and the log
                checks[c.name] = f"fail: {exc}"
                log.warning("component not ready", extra={"component": c.name, "reason": str(exc)})
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "fail", "checks": checks}, status_code=200 if ok else 503)

    return router
