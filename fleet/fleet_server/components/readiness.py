"""Readiness checks shared by components."""

from ..context import AppContext


def storage_reachable(ctx: AppContext) -> None:
    ctx.storage.ping()
