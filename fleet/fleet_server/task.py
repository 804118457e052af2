"""A periodic job on the server's event loop, with start and stop."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

log = logging.getLogger("fleet.task")


class PeriodicTask:
    """Calls fn() every `every_s` seconds; an exception is logged and the next run still happens."""

    def __init__(self, every_s: float, fn: Callable[[], object], name: str):
        self.every_s = every_s
        self.fn = fn
        self.name = name
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                self.fn()
            except Exception:  # a bad row must not stop the job for good
                log.exception("periodic task failed", extra={"task": self.name})
