"""The fleet inventory: each device as an operator sees it, online or offline from its heartbeats."""

from __future__ import annotations

import time
from typing import Literal, Optional

from pydantic import BaseModel, Field

OPEN_STATUSES = ["open", "acknowledged"]


class InventoryItem(BaseModel):
    id: str
    tenant: str
    namespace: str
    role: str
    online: bool
    last_heartbeat: Optional[float] = Field(None, description="unix seconds the server last heard from it")
    firmware_version: Optional[str] = None
    image: Optional[dict] = Field(None, description='{"wireless": bool, "variant": str} from the heartbeat')
    address: Optional[str] = None
    port: Optional[int] = None
    registered_at: Optional[float] = None
    uptime_s: Optional[int] = None
    free_heap: Optional[int] = None
    boot_count: Optional[int] = None
    safe_mode: Optional[bool] = None
    health: dict = Field(default_factory=dict)
    ota: Optional[dict] = None
    state: dict = Field(description="desired and reported state with their versions")
    open_alarms: int
    highest_open_severity: Optional[Literal["info", "warning", "critical"]] = None


class InventoryPage(BaseModel):
    devices: list[InventoryItem]
    total: int
    limit: int
    offset: int
    online: int = Field(description="devices of this page's filter set that are online")


_RANK = {"info": 0, "warning": 1, "critical": 2}


def _item(store, row: dict, now: float, offline_after_s: int) -> dict:
    reg = row.get("registration") or {}
    hb = store.get_heartbeat(row["id"]) or {}
    alarms = store.list_alarm_records(row["tenant"], row["id"], OPEN_STATUSES)
    last = row.get("last_seen")
    highest = max((a["severity"] for a in alarms), key=_RANK.get, default=None)
    return {
        "id": row["id"], "tenant": row["tenant"], "namespace": row["namespace"], "role": row["role"],
        "online": last is not None and now - last <= offline_after_s, "last_heartbeat": last,
        "firmware_version": hb.get("firmware_version") or reg.get("firmware_version"),
        "image": hb.get("image"), "address": reg.get("address"), "port": reg.get("port"),
        "registered_at": reg.get("registered_at"), "uptime_s": hb.get("uptime_s"),
        "free_heap": hb.get("free_heap"), "boot_count": hb.get("boot_count"), "safe_mode": hb.get("safe_mode"),
        "health": hb.get("health") or {}, "ota": hb.get("ota"), "state": store.get_state(row["id"]),
        "open_alarms": len(alarms), "highest_open_severity": highest,
    }


def inventory_page(store, tenant: str, namespace: str, offline_after_s: int, role: str | None = None,
                   online: bool | None = None, limit: int = 50, offset: int = 0) -> dict:
    now = time.time()
    cutoff = now - offline_after_s
    rows, total = store.list_devices(tenant, namespace, role,
                                     seen_after=cutoff if online is True else None,
                                     offline_before=cutoff if online is False else None,
                                     limit=limit, offset=offset)
    items = [_item(store, r, now, offline_after_s) for r in rows]
    online_total = total if online is True else (0 if online is False else
                                                  store.list_devices(tenant, namespace, role, seen_after=cutoff,
                                                                     limit=1)[1])
    return {"devices": items, "total": total, "limit": limit, "offset": offset, "online": online_total}


def inventory_item(store, device: dict, offline_after_s: int) -> dict:
    rows, _ = store.list_devices(device["tenant"], device["namespace"], device_id=device["id"], limit=1)
    return _item(store, rows[0], time.time(), offline_after_s)
