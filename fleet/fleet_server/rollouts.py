"""Staged rollouts: an artefact goes to its canaries first, is promoted to everyone once they commit,
and halts by itself when a canary rolls back, enters safe mode, raises a critical alarm or misses
the deadline.

A canary's progress comes from its heartbeats (firmware_version, ota.trial, safe_mode):
pending -> trial (running the version, uncommitted) -> committed; back to another version after
having run it is a rollback.
"""

from __future__ import annotations

import hashlib
import math
import time

from .api_error import ApiError
from .audit import Scope, record
from .storage import AlreadyExists, StateChanged

ACTIVE = "canary"


def offered(manifest: dict, rollouts_by_artifact: dict[str, dict], device_id: str) -> bool:
    """May this device be offered this manifest? Artefacts outside any rollout always are."""
    rollout = rollouts_by_artifact.get(manifest["name"])
    if rollout is None:
        return True
    if rollout["state"] == "promoted":
        return True
    return rollout["state"] == ACTIVE and device_id in rollout["canaries"]


def pick_canaries(device_ids: list[str], percentage: int) -> list[str]:
    """A stable choice: the devices whose id hashes lowest, at least one."""
    ranked = sorted(device_ids, key=lambda d: hashlib.sha256(d.encode()).hexdigest())
    return ranked[:max(1, math.ceil(len(ranked) * percentage / 100))]


class RolloutManager:
    def __init__(self, storage):
        self.storage = storage

    # ---- operator side -------------------------------------------------------------------
    def create(self, scope: Scope, name: str, artifact: str, canaries: list[str] | None, percentage: int | None,
               window_s: int, deadline_s: int) -> dict:
        manifest = next((m for m in self.storage.list_manifests(scope.tenant) if m["name"] == artifact), None)
        if manifest is None:
            raise ApiError(404, f"unknown artefact {artifact!r}")
        if any(r["artifact"] == artifact and r["state"] != "halted" for r in self.storage.list_rollouts(scope.tenant)):
            raise ApiError(409, f"artefact {artifact!r} already has a rollout")
        devices, _ = self.storage.list_devices(scope.tenant, scope.namespace, manifest.get("role"), limit=100_000)
        ids = [d["id"] for d in devices]
        if canaries:
            unknown = sorted(set(canaries) - set(ids))
            if unknown:
                raise ApiError(400, f"canaries: not devices of this namespace{' and role' if manifest.get('role') else ''}: {unknown}")
        elif percentage:
            if not ids:
                raise ApiError(400, "percentage: no devices to choose canaries from")
            canaries = pick_canaries(ids, percentage)
        else:
            raise ApiError(400, "give canaries or percentage")
        now = time.time()
        rollout = {"name": name, "tenant": scope.tenant, "namespace": scope.namespace, "artifact": artifact,
                   "version": manifest["version"], "canaries": sorted(canaries), "percentage": percentage,
                   "window_s": window_s, "deadline_s": deadline_s, "state": ACTIVE, "reason": None,
                   "created_at": now, "updated_at": now, "created_by": scope.actor,
                   "progress": {c: "pending" for c in canaries}, "committed_at": {}}
        try:
            self.storage.create_rollout(rollout)
        except AlreadyExists:
            raise ApiError(409, f"rollout {name!r} exists")
        record(self.storage, scope.tenant, scope.actor, "rollout.create", name, artifact=artifact,
               canaries=rollout["canaries"])
        return rollout

    def get(self, tenant: str, name: str) -> dict:
        for r in self.storage.list_rollouts(tenant):
            if r["name"] == name:
                return r
        raise ApiError(404, f"unknown rollout {name!r}")

    def halt(self, scope: Scope, name: str) -> dict:
        rollout = self.get(scope.tenant, name)
        if rollout["state"] != ACTIVE:
            raise ApiError(409, f"rollout is {rollout['state']}")
        return self._finish(rollout, "halted", f"halted by {scope.actor}", scope.actor, time.time())

    # ---- evaluation ----------------------------------------------------------------------
    def evaluate_once(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for rollout in self.storage.list_rollouts(None):
            if rollout["state"] == ACTIVE:
                try:
                    self._evaluate(rollout, now)
                except ApiError:  # finished meanwhile by an operator or another replica
                    continue

    def _evaluate(self, r: dict, now: float) -> None:
        changed = False
        for device_id in r["canaries"]:
            hb = self.storage.get_heartbeat(device_id) or {}
            status = r["progress"].get(device_id, "pending")
            running = hb.get("firmware_version")
            if hb.get("safe_mode"):
                return self._finish(r, "halted", f"canary {device_id} is in safe mode", "rollout", now)
            critical = [a for a in self.storage.list_alarm_records(r["tenant"], device_id)
                        if a["severity"] == "critical" and a["last_seen"] > r["created_at"]]
            if critical:
                return self._finish(r, "halted", f"canary {device_id} raised critical alarm {critical[0]['type']}",
                                    "rollout", now)
            if running == r["version"]:
                new = "trial" if (hb.get("ota") or {}).get("trial") else "committed"
                if new != status:
                    r["progress"][device_id] = new
                    if new == "committed":
                        r["committed_at"][device_id] = hb.get("received_at", now)
                    changed = True
            elif status in ("trial", "committed"):
                return self._finish(r, "halted", f"canary {device_id} rolled back to {running}", "rollout", now)
        if changed:
            r["updated_at"] = now
            try:
                self.storage.update_rollout(r, expected_state=ACTIVE)
            except StateChanged:
                return  # halted meanwhile (an operator, on any replica): nothing more to do
        if all(r["progress"][c] == "committed" for c in r["canaries"]):
            if now - max(r["committed_at"].values()) >= r["window_s"]:
                self._finish(r, "promoted", f"all {len(r['canaries'])} canaries committed", "rollout", now)
        elif now - r["created_at"] > r["deadline_s"]:
            self._finish(r, "halted", f"canaries did not commit within {r['deadline_s']} s", "rollout", now)

    def _finish(self, r: dict, state: str, reason: str, actor: str, now: float) -> dict:
        r.update(state=state, reason=reason, updated_at=now)
        try:  # only an active rollout finishes, and only once, whichever replica gets there first
            self.storage.update_rollout(r, expected_state=ACTIVE)
        except StateChanged as exc:
            raise ApiError(409, f"rollout is {exc.current}")
        record(self.storage, r["tenant"], actor, f"rollout.{state}", r["name"], reason=reason, artifact=r["artifact"])
        return r
