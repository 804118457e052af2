#!/usr/bin/env python3
"""1,000 simulated devices against two fleet-server replicas on PostgreSQL, then against one
fleet-server on SQLite with the same load; prints both and their ratio (not a timed test).

Each device registers (challenge on one replica, proof on the other) and runs rounds of heartbeat,
config with ETag, state report and alarm batch, all devices at once. Printed per setup: requests/s,
p50/p99 latency, errors (must be 0), database connections used (peak of pg_stat_activity for
PostgreSQL), and the load generator's own CPU use, to show it is not what limits the rate.
PostgreSQL runs with fsync on and synchronous_commit=off, SQLite in WAL with synchronous=NORMAL:
both keep the database intact on a crash and may lose the last commits.

    .venv/bin/python ci/bench/fleet_replicas.py [--devices 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from fleet_devtools.device_sim import REQUESTS_PER_ROUND, REQUESTS_TO_REGISTER, provision_devices, run_fleet
from fleet_devtools.pg_cluster import LocalPostgres
from fleet_server.storage import open_storage


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, secrets: str, log: Path, name: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    exe = Path(sys.executable).parent / "fleet-server"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fleet_server.server_cli"]
    # WARNING keeps per-request log lines out of the measurement; the URL travels in the environment
    proc = subprocess.Popen(cmd + ["--port", str(port), "--log-level", "WARNING", "--replica-id", name],
                            env=dict(os.environ, FLEET_DB=db, FLEET_SECRETS=secrets), stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/readyz", timeout=0.5).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"fleet-server did not start: {log.read_text()}")


def stop(procs: list[subprocess.Popen]) -> list[int]:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    return [p.wait(timeout=30) for p in procs]


class PeakSampler:
    """Samples a count every 0.2 s on a thread and keeps the maximum."""

    def __init__(self, sample):
        self.sample, self.peak = sample, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.sample())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def drive(db: str, secrets: str, ports: list[int], devices: int, rounds: int) -> dict:
    store = open_storage(db, pool_size=1, secrets=secrets)
    try:
        provs = provision_devices(store, devices, prefix="bench")
    finally:
        store.close()
    cpu0 = time.process_time()
    stats = asyncio.run(run_fleet(provs, [("127.0.0.1", p) for p in ports], rounds))
    out = stats.summary()
    out["generator_cpu_pct_of_one_core"] = round(100 * (time.process_time() - cpu0) / out["wall_s"], 1)
    for e in stats.errors[:5]:
        print("error:", e, file=sys.stderr)
    expected = devices * (REQUESTS_TO_REGISTER + rounds * REQUESTS_PER_ROUND)
    assert out["requests"] + out["errors"] >= expected, f"only {out['requests']} of {expected} requests ran"
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    # each device holds a connection per replica it talks to, on both ends
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.devices + 256)), hard))
    results = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        secrets = f"file:{tmp / 'fleet-keys.json'}"  # one master-key file shared by every process
        pg = LocalPostgres(durable=True, max_connections=50).start()
        try:
            url = pg.create_database("bench")
            procs, ports = zip(*(start_server(url, secrets, tmp / f"r{i}.log", f"replica-{i}") for i in range(2)))
            try:
                with PeakSampler(lambda: pg.connections("bench")) as peak:
                    results["postgres_2_replicas"] = drive(url, secrets, list(ports), args.devices, args.rounds)
                results["postgres_2_replicas"]["db_connections_peak"] = peak.peak
            finally:
                rcs = stop(list(procs))
        finally:
            pg.stop()
        sqlite_db = str(tmp / "fleet.sqlite")
        proc, port = start_server(sqlite_db, secrets, tmp / "sqlite.log", "single")
        try:
            results["sqlite_1_process"] = drive(sqlite_db, secrets, [port], args.devices, args.rounds)
            results["sqlite_1_process"]["db_connections_peak"] = 1
        finally:
            rcs += stop([proc])
    pg_r, lite = results["postgres_2_replicas"], results["sqlite_1_process"]
    print(f"{'setup':22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'db conns':>9} {'gen cpu%':>9}")
    for name, r in results.items():
        print(f"{name:22} {r['rps']:8.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7d} "
              f"{r['db_connections_peak']:9d} {r['generator_cpu_pct_of_one_core']:9.1f}")
    print(json.dumps({"devices": args.devices, "rounds": args.rounds, "cpus": os.cpu_count(), **results,
                      "rps_ratio_postgres_2_over_sqlite_1": round(pg_r["rps"] / lite["rps"], 3),
                      "p99_ratio_postgres_2_over_sqlite_1": round(pg_r["p99_ms"] / max(lite["p99_ms"], 1e-9), 3),
                      "server_exits": rcs}))
    assert pg_r["errors"] == 0 and lite["errors"] == 0, "errors under load"
    assert rcs == [0, 0, 0], f"fleet-server exits {rcs}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
