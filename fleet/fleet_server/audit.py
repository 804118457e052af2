"""The audit log: one entry per admin action, alarm transition and notification outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """Who acts and where: an API caller's tenant and namespace, or the bootstrap CLI on a device's."""

    tenant: str
    namespace: str
    actor: str


def record(storage, tenant: str, actor: str, audit_action: str, target: str, **detail) -> None:
    """`audit_action` names what happened (e.g. device.action); detail may hold `action`, `event` etc."""
    storage.append_audit({"at": time.time(), "tenant": tenant, "actor": actor, "action": audit_action,
                          "target": target, "detail": detail})
