"""Admin API, rollouts: start a staged rollout of a published artefact, watch it, halt it."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..auth import Principal
from ..context import AppContext, api_scope, get_ctx, get_principal
from ..errors import responses


class RolloutIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    artifact: str = Field(min_length=1, description="a published artefact's name")
    canaries: Optional[list[str]] = Field(None, min_length=1, max_length=100, description="device ids")
    percentage: Optional[int] = Field(None, ge=1, le=100, description="or: this share of the namespace's devices")
    window_s: int = Field(300, ge=0, description="how long canaries must stay committed before promotion")
    deadline_s: int = Field(3600, ge=1, description="halt when the canaries have not all committed by then")


class RolloutOut(BaseModel):
    name: str
    tenant: str
    namespace: str
    artifact: str
    version: str
    canaries: list[str]
    percentage: Optional[int]
    window_s: int
    deadline_s: int
    state: str = Field(description="canary (only canaries are offered it), promoted (everyone) or halted (nobody)")
    reason: Optional[str]
    progress: dict[str, str] = Field(description="canary -> pending, trial or committed")
    committed_at: dict[str, float]
    created_at: float
    updated_at: float
    created_by: str


def make_router() -> APIRouter:
    router = APIRouter(prefix="/api/admin", tags=["admin"])

    @router.post("/rollouts", response_model=RolloutOut, status_code=201,
                 responses={**responses(400, 401, 403, 404), 409: {"description": "name or artefact taken"}})
    async def create(body: RolloutIn, ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Start a rollout (`ota:admin`): the artefact is offered to the canaries only, until promotion."""
        return ctx.rollouts.create(api_scope(who, "ota:admin"), body.name, body.artifact, body.canaries,
                                   body.percentage, body.window_s, body.deadline_s)

    @router.get("/rollouts", response_model=list[RolloutOut], responses=responses(401, 403))
    async def list_rollouts(ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """The tenant's rollouts, oldest first (`devices:read`)."""
        return ctx.storage.list_rollouts(api_scope(who, "devices:read").tenant)

    @router.get("/rollouts/{name}", response_model=RolloutOut, responses=responses(401, 403, 404))
    async def get(name: str, ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """One rollout and its canaries' progress (`devices:read`)."""
        return ctx.rollouts.get(api_scope(who, "devices:read").tenant, name)

    @router.post("/rollouts/{name}/halt", response_model=RolloutOut,
                 responses={**responses(401, 403, 404), 409: {"description": "not running"}})
    async def halt(name: str, ctx: AppContext = Depends(get_ctx), who: Principal = Depends(get_principal)):
        """Halt a running rollout (`ota:admin`): nobody else is offered the artefact."""
        return ctx.rollouts.halt(api_scope(who, "ota:admin"), name)

    return router
