#!/usr/bin/env python3
"""Bounded mixed load against a real fleet-server on loopback (not a timed assertion).

Starts `fleet-server` on a temporary SQLite file, provisions and registers one device per
worker, then runs 1,000 requests (heartbeats, config GETs with and without ETag, state PUTs,
alarm batches) with 20 concurrent workers, asserts zero errors, and prints requests/second next
to the same number of bare /health/livez requests measured in the same run.

    .venv/bin/python ci/bench/fleet_load.py [--requests 1000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from fleet_server import admin_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin(db: Path, *args: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert admin_cli.main(["--db", str(db), *args]) == 0
    return json.loads(out.getvalue())


def start_server(db: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    exe = Path(sys.executable).parent / "fleet-server"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "fleet_server.server_cli"]
    # WARNING keeps per-request access lines out of the measurement
    proc = subprocess.Popen(cmd + ["--db", str(db), "--port", str(port), "--log-level", "WARNING"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health/readyz", timeout=0.5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"fleet-server did not start: {log.read_text()}")


def register(url: str, db: Path, device_id: str, tmp: Path) -> dict:
    prov = admin(db, "provision", "--id", device_id, "--tenant", "bench", "--namespace", "lab", "--role", "relays")
    cfg = tmp / f"{device_id}.json"
    cfg.write_text(json.dumps({"heartbeat_s": 30, "relays": {"pump": {"pin": 2}}}))
    admin(db, "config-set", "--id", device_id, "--file", str(cfg))
    nonce = httpx.post(f"{url}/api/devices/{device_id}/challenge").json()["nonce"]
    proof = hmac.new(prov["device_key"].encode(), f"{nonce}:{device_id}".encode(), hashlib.sha256).hexdigest()
    body = {"id": device_id, "role": "relays", "firmware_version": "1.0.0", "address": "127.0.0.1", "port": 80,
            "capabilities": [], "tenant": "bench", "namespace": "lab", "nonce": nonce, "proof": proof}
    res = httpx.post(f"{url}/api/devices", json=body)
    res.raise_for_status()
    return {"id": device_id, "token": res.json()["token"]}


class Tally:
    def __init__(self):
        self.done = 0
        self.errors: list[str] = []


async def device_worker(client: httpx.AsyncClient, dev: dict, budget: asyncio.Queue, tally: Tally) -> None:
    """One device's traffic, in order, so its state versions never race with another worker."""
    headers = {"Authorization": f"Bearer {dev['token']}"}
    state_path = f"/api/tenants/bench/namespaces/lab/devices/{dev['id']}/state"
    version, etag, step = 0, None, 0
    while True:
        try:
            budget.get_nowait()
        except asyncio.QueueEmpty:
            return
        kind = step % 5
        step += 1
        if kind == 0:
            res = await client.post(f"/api/devices/{dev['id']}/heartbeat", headers=headers,
                                    json={"uptime_s": step, "free_heap": 100000, "health": {"wifi": "ok"}})
            ok = res.status_code == 200
        elif kind == 1:
            res = await client.get(f"/api/devices/{dev['id']}/config", headers=headers)
            ok = res.status_code == 200
            etag = res.headers.get("etag")
        elif kind == 2:
            res = await client.get(f"/api/devices/{dev['id']}/config", headers={**headers, "If-None-Match": etag or ""})
            ok = res.status_code == 304
        elif kind == 3:
            res = await client.put(state_path, headers=headers, json={"reported": {"pump": step % 2}, "version": version})
            ok = res.status_code == 200
            if ok:
                version = res.json()["version"]
        else:
            now = time.time()
            res = await client.post("/api/alarms", headers=headers, json={"device_id": dev["id"], "dropped": 0, "alarms": [
                {"type": "overtemp", "severity": "warning", "source": "t", "count": 1, "first_seen": now, "last_seen": now}]})
            ok = res.status_code == 200
        tally.done += 1
        if not ok:
            tally.errors.append(f"{res.request.method} {res.request.url.path} -> {res.status_code} {res.text[:120]}")


async def livez_worker(client: httpx.AsyncClient, budget: asyncio.Queue, tally: Tally) -> None:
    while True:
        try:
            budget.get_nowait()
        except asyncio.QueueEmpty:
            return
        res = await client.get("/health/livez")
        tally.done += 1
        if res.status_code != 200:
            tally.errors.append(f"livez -> {res.status_code}")


def _budget(n: int) -> asyncio.Queue:
    q: asyncio.Queue = asyncio.Queue()
    for _ in range(n):
        q.put_nowait(None)
    return q


async def measure(url: str, devices: list[dict], requests: int, baseline: bool) -> tuple[float, Tally]:
    tally = Tally()
    limits = httpx.Limits(max_connections=len(devices), max_keepalive_connections=len(devices))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await client.get("/health/livez")  # warm the connection pool outside the timing
        budget = _budget(requests)
        start = time.perf_counter()
        if baseline:
            await asyncio.gather(*(livez_worker(client, budget, tally) for _ in devices))
        else:
            await asyncio.gather(*(device_worker(client, d, budget, tally) for d in devices))
        return time.perf_counter() - start, tally


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=20)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        db = tmp / "fleet.sqlite"
        proc, url = start_server(db, tmp / "server.log")
        try:
            devices = [register(url, db, f"bench-{i:02d}", tmp) for i in range(args.concurrency)]
            mixed_s, mixed = asyncio.run(measure(url, devices, args.requests, baseline=False))
            base_s, base = asyncio.run(measure(url, devices, args.requests, baseline=True))
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=15)
    errors = mixed.errors + base.errors
    for e in errors[:10]:
        print("error:", e, file=sys.stderr)
    mixed_rps, base_rps = mixed.done / mixed_s, base.done / base_s
    print(json.dumps({
        "requests": mixed.done, "concurrency": args.concurrency, "errors": len(errors),
        "mixed_rps": round(mixed_rps, 1), "baseline_livez_rps": round(base_rps, 1),
        "mixed_over_baseline": round(mixed_rps / base_rps, 3), "server_exit": rc,
    }))
    assert mixed.done == args.requests and base.done == args.requests, "not every request ran"
    assert not errors, f"{len(errors)} errors"
    assert rc == 0, f"fleet-server exited with {rc}"
    return 0


if __name__ == "__main__":
    sys.exit(main())
