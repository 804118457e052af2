"""Alarm lifecycle: open -> acknowledged -> cleared, reopened when the condition comes back.

A device's report opens (or reopens) an alarm and its "cleared" list clears it; an operator
acknowledges or clears; an open, unacknowledged alarm escalates by severity and age. Every
transition is audited and handed to the notifier.
"""

from __future__ import annotations

import time

from .api_error import ApiError
from .audit import record
from .storage import StateChanged


class AlarmLifecycle:
    def __init__(self, storage, notifier, escalate_after_s: dict[str, int]):
        self.storage = storage
        self.notifier = notifier
        self.escalate_after_s = escalate_after_s

    # ---- helpers ----------------------------------------------------------------------
    def _alarm(self, device_id: str, type_: str, source: str) -> dict | None:
        for a in self.storage.list_alarm_records(None, device_id):
            if a["type"] == type_ and a["source"] == source:
                return a
        return None

    def _transition(self, alarm: dict, status: str, actor: str, event: str, now: float, **extra) -> dict:
        opened_at = now if event in ("opened", "reopened") else alarm["opened_at"]
        escalation = 0 if event in ("opened", "reopened") else extra.pop("escalation", alarm["escalation"])
        # conditional on the row as read (changed_at None: no row yet), so of two replicas making
        # the same transition one does it (and notifies) and an ack is never overwritten
        try:
            self.storage.put_alarm_status({"device_id": alarm["device_id"], "type": alarm["type"],
                                           "source": alarm["source"], "status": status, "opened_at": opened_at,
                                           "changed_at": now, "changed_by": actor, "escalation": escalation},
                                          expected_changed_at=alarm["changed_at"])
        except StateChanged as exc:
            raise ApiError(409, f"alarm changed meanwhile, it is {exc.current or 'open'}")
        fresh = self._alarm(alarm["device_id"], alarm["type"], alarm["source"])
        record(self.storage, fresh["tenant"], actor, f"alarm.{event}",
               f"{fresh['device_id']}/{fresh['type']}/{fresh['source']}", severity=fresh["severity"],
               count=fresh["count"], escalation=fresh["escalation"], **extra)
        self.notifier.notify(event, fresh)
        return fresh

    # ---- from devices ---------------------------------------------------------------------
    def on_batch(self, device_id: str, alarms: list[dict], cleared: list[dict]) -> None:
        """After a batch was merged: open what is new, reopen what came back, clear what is gone."""
        now = time.time()
        for a in alarms:
            current = self._alarm(device_id, a["type"], a["source"])
            status = self.storage.get_alarm_status(device_id, a["type"], a["source"])
            if status is None:
                self._quietly(current, "open", "device", "opened", now)
            elif status["status"] == "cleared" and a["last_seen"] > status["changed_at"]:
                self._quietly(current, "open", "device", "reopened", now)
        for c in cleared:
            current = self._alarm(device_id, c["type"], c["source"])
            if current is not None and current["status"] != "cleared":
                self._quietly(current, "cleared", "device", "cleared", now, reason="condition gone")

    def _quietly(self, alarm: dict, *args, **extra) -> bool:
        """A transition nobody waits on (device batch, escalation); losing the race to another
        replica's transition of the same alarm is fine: that one was audited and notified."""
        try:
            self._transition(alarm, *args, **extra)
            return True
        except ApiError:
            return False

    # ---- from operators ----------------------------------------------------------------------
    def acknowledge(self, device_id: str, type_: str, source: str, actor: str) -> dict:
        alarm = self._existing(device_id, type_, source)
        if alarm["status"] != "open":
            raise ApiError(409, f"alarm is {alarm['status']}, only an open alarm can be acknowledged")
        return self._transition(alarm, "acknowledged", actor, "acknowledged", time.time())

    def clear(self, device_id: str, type_: str, source: str, actor: str) -> dict:
        alarm = self._existing(device_id, type_, source)
        if alarm["status"] == "cleared":
            raise ApiError(409, "alarm is already cleared")
        return self._transition(alarm, "cleared", actor, "cleared", time.time(), reason="operator")

    def _existing(self, device_id: str, type_: str, source: str) -> dict:
        alarm = self._alarm(device_id, type_, source)
        if alarm is None:
            raise ApiError(404, f"no alarm {type_!r} from {source!r} on {device_id!r}")
        return alarm

    # ---- escalation ----------------------------------------------------------------------------
    def escalate_once(self, now: float | None = None) -> int:
        """Raise the level of open alarms old enough for their severity; how many escalated."""
        now = time.time() if now is None else now
        escalated = 0
        for alarm in self.storage.list_alarm_records(None, statuses=["open"]):
            after = self.escalate_after_s.get(alarm["severity"])
            if not after:
                continue
            level = int((now - alarm["opened_at"]) // after)
            if level > alarm["escalation"]:
                escalated += self._quietly(alarm, "open", "escalation", "escalated", now, escalation=level)
        return escalated

