"""The server's long-running parts on their own: PeriodicTask and the webhook Notifier (start, stop,
a failing receiver)."""

import asyncio
import socket

from fleet_server.notify import Notifier
from fleet_server.storage import SqliteStorage
from fleet_server.task import PeriodicTask


def test_periodic_task_runs_survives_an_exception_and_stops():
    calls = []

    def job():
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("one bad run")

    async def main():
        task = PeriodicTask(0.01, job, "test")
        await task.start()
        await task.start()  # idempotent: still one loop
        await asyncio.sleep(0.1)
        assert task.running
        await task.stop()
        assert not task.running
        seen = len(calls)
        await asyncio.sleep(0.05)
        return seen

    seen = asyncio.run(main())
    assert seen >= 4 and len(calls) == seen  # went on after the exception; nothing after stop


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_notifier_gives_up_after_its_attempts_and_audits_the_failure(tmp_path):
    store = SqliteStorage(str(tmp_path / "f.sqlite"))
    store.put_webhook({"tenant": "t", "name": "down", "url": f"http://127.0.0.1:{_closed_port()}/x",
                       "secret": "s" * 16, "format": "json", "min_severity": "info"})
    alarm = {"device_id": "d", "tenant": "t", "namespace": "n", "type": "x", "source": "s", "severity": "warning",
             "count": 1, "status": "open", "opened_at": 1.0, "changed_at": 1.0, "escalation": 0}

    async def main():
        notifier = Notifier(store, attempts=3, backoff_s=0.01)
        assert notifier.notify("opened", alarm) == 0  # not started: nothing queued
        await notifier.start()
        assert notifier.notify("opened", alarm) == 1
        assert notifier.notify("opened", dict(alarm, tenant="other")) == 0  # no hooks there
        for _ in range(200):
            if store.list_audit("t"):
                break
            await asyncio.sleep(0.02)
        await notifier.stop()

    asyncio.run(main())
    (entry,) = store.list_audit("t")
    assert entry["action"] == "webhook.failed" and entry["detail"]["attempts"] == 3
    assert "ConnectError" in entry["detail"]["reason"] and entry["target"] == "d/x/s"
    store.close()
