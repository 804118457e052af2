"""Alarm notifications to tenant webhooks: signed JSON or Prometheus Alertmanager's webhook format.

Each delivery is retried with doubling delays and its outcome is audited. Signature header:
`X-Fleet-Signature: sha256=<hex HMAC-SHA256(secret, "<X-Fleet-Timestamp>." + body)>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import datetime, timezone

import httpx

from .audit import record

log = logging.getLogger("fleet.notify")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end yet"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alertmanager_body(receiver: str, event: str, alarm: dict, external_url: str) -> dict:
    resolved = alarm["status"] == "cleared"
    labels = {"alertname": alarm["type"], "device_id": alarm["device_id"], "tenant": alarm["tenant"],
              "namespace": alarm["namespace"], "source": alarm["source"], "severity": alarm["severity"]}
    annotations = {"summary": alarm.get("message") or alarm["type"], "event": event,
                   "count": str(alarm["count"]), "fleet_status": alarm["status"],
                   "escalation": str(alarm.get("escalation", 0))}
    fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    status = "resolved" if resolved else "firing"
    return {"version": "4", "groupKey": f'{{}}:{{alertname="{alarm["type"]}"}}', "truncatedAlerts": 0,
            "status": status, "receiver": receiver, "groupLabels": {"alertname": alarm["type"]},
            "commonLabels": labels, "commonAnnotations": annotations, "externalURL": external_url,
            "alerts": [{"status": status, "labels": labels, "annotations": annotations,
                        "startsAt": _rfc3339(alarm["opened_at"]),
                        "endsAt": _rfc3339(alarm["changed_at"]) if resolved else ZERO_TIME,
                        "generatorURL": f"{external_url}/console/alarms", "fingerprint": fingerprint}]}


def render(hook: dict, event: str, alarm: dict, external_url: str) -> dict:
    if hook["format"] == "alertmanager":
        return alertmanager_body(hook["name"], event, alarm, external_url)
    return {"event": f"alarm.{event}", "at": time.time(), "alarm": alarm}


class Notifier:
    """Queue of (hook, event, alarm); start() runs the sender, stop() cancels what is in flight."""

    def __init__(self, storage, attempts: int = 5, backoff_s: float = 1.0, external_url: str = ""):
        self.storage = storage
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.external_url = external_url
        self._queue: asyncio.Queue | None = None
        self._runner: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self._client: httpx.AsyncClient | None = None

    def notify(self, event: str, alarm: dict) -> int:
        """Queue the event for every webhook of the alarm's tenant at or below its severity; how many."""
        if self._queue is None:
            return 0
        hooks = [h for h in self.storage.list_webhooks(alarm["tenant"])
                 if SEVERITY_RANK[alarm["severity"]] >= SEVERITY_RANK[h["min_severity"]]]
        for hook in hooks:
            self._queue.put_nowait((hook, event, dict(alarm)))
        return len(hooks)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=5)
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._runner, *self._inflight) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        self._queue = self._runner = self._client = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            task = asyncio.create_task(self._guarded(*item))  # one slow receiver holds up no other
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _guarded(self, hook: dict, event: str, alarm: dict) -> None:
        try:
            await self._deliver(hook, event, alarm)
        except Exception:  # a bug here must show in the log, not vanish with the task
            log.exception("webhook delivery crashed", extra={"webhook": hook["name"]})

    async def _deliver(self, hook: dict, event: str, alarm: dict) -> None:
        body = json.dumps(render(hook, event, alarm, self.external_url), sort_keys=True).encode()
        delivery = uuid.uuid4().hex
        target = f"{alarm['device_id']}/{alarm['type']}/{alarm['source']}"
        last = ""
        for attempt in range(1, self.attempts + 1):
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Fleet-Event": f"alarm.{event}",
                       "X-Fleet-Delivery": delivery, "X-Fleet-Timestamp": stamp,
                       "X-Fleet-Signature": sign(hook["secret"], stamp, body)}
            try:
                res = await self._client.post(hook["url"], content=body, headers=headers)
                if 200 <= res.status_code < 300:
                    record(self.storage, alarm["tenant"], "notifier", "webhook.delivered", target,
                           webhook=hook["name"], event=event, attempts=attempt, delivery=delivery)
                    return
                last = f"status {res.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            log.warning("webhook attempt failed", extra={"webhook": hook["name"], "attempt": attempt,
                                                         "reason": last})
            if attempt < self.attempts:
                await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
        record(self.storage, alarm["tenant"], "notifier", "webhook.failed", target, webhook=hook["name"],
               event=event, attempts=self.attempts, reason=last, delivery=delivery)
