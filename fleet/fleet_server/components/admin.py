"""Admin API: everything `fleet-admin` does, over HTTP, under the caller's tenant and namespace."""

from __future__ import annotations

from fastapi import APIRouter

from . import admin_devices, admin_rollouts, admin_tenant
from .readiness import storage_reachable


def make_router() -> APIRouter:
    router = APIRouter()
    router.include_router(admin_devices.make_router())
    router.include_router(admin_tenant.make_router())
    router.include_router(admin_rollouts.make_router())
    return router


ready = storage_reachable
