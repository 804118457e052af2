"""Periodic background jobs, each run by one replica at a time: the holder of the job's lease.

Every replica ticks every job; a tick takes or renews the job's lease (storage.try_lease) and runs
the job only when it holds it. A lease outlives a few ticks, so a replica that dies hands its jobs
to another within `LEASE_TICKS * interval`; one that stops cleanly releases them at once. Jobs are
short synchronous storage work and must tolerate a rare second run (clock skew between replicas
can overlap two holders by that skew).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from .storage import Storage

log = logging.getLogger("fleet.background")
LEASE_TICKS = 3


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[Storage], object]


def housekeeping_job(interval_s: float, nonce_grace_s: float = 3600) -> Job:
    """Sweeps nonces expired more than nonce_grace_s ago (until then a late proof hears "expired")."""
    return Job("housekeeping", interval_s, lambda s: s.sweep_nonces(time.time() - nonce_grace_s))


class LeasedJobs:
    def __init__(self, storage: Storage, replica_id: str, jobs: list[Job], registry: CollectorRegistry):
        self._storage = storage
        self._replica = replica_id
        self._jobs = jobs
        self._tasks: list[asyncio.Task] = []
        self._last_tick_failed = False
        self._runs = Counter("fleet_background_runs_total", "background job runs on this replica",
                             ["job"], registry=registry)
        self._held = Gauge("fleet_background_lease_held", "1 while this replica holds the job's lease",
                           ["job"], registry=registry)
        for job in jobs:  # present at 0 from the start, so "never ran here" is visible
            self._runs.labels(job.name)
            self._held.labels(job.name).set(0)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(job), name=f"job:{job.name}") for job in self._jobs]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        storage_gone = self._last_tick_failed  # then each release would wait out the pool timeout too
        for job in self._jobs:
            if not storage_gone:
                try:
                    self._storage.release_lease(job.name, self._replica)
                except Exception as exc:  # storage is gone: the leases then simply expire
                    log.warning("leases not released", extra={"job": job.name, "reason": str(exc)})
                    storage_gone = True  # each further try would wait out the pool timeout again
            self._held.labels(job.name).set(0)

    def tick(self, job: Job) -> bool:
        """One round for `job`: run it if this replica holds (or can take) its lease."""
        if not self._storage.try_lease(job.name, self._replica, job.interval_s * LEASE_TICKS):
            self._held.labels(job.name).set(0)
            return False
        self._held.labels(job.name).set(1)
        job.run(self._storage)
        self._runs.labels(job.name).inc()
        return True

    async def _loop(self, job: Job) -> None:
        while True:
            try:
                self.tick(job)
                self._last_tick_failed = False
            except Exception as exc:  # a failed round is logged and retried next tick, never fatal
                self._last_tick_failed = True
                log.warning("background job failed", extra={"job": job.name, "reason": str(exc)})
            await asyncio.sleep(job.interval_s)
