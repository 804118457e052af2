"""Simulated devices speaking the fleet wire protocol (docs/fleet-api.md), many at once on asyncio.

Each device registers (challenge on one replica, proof on the next, as a load balancer may route
them), then runs rounds of what firmware does: heartbeat, config GET with If-None-Match (200 once,
304 after), a state report with its version, an alarm batch. Every request's latency and every
unexpected status is recorded. The HTTP client is a small keep-alive HTTP/1.1 client on asyncio
streams, so the load generator spends little CPU per request compared with the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import ssl as ssl_module
import time
from dataclasses import dataclass, field


class WireError(Exception):
    """A reply that is not HTTP/1.1 as expected, or a dropped connection."""


class HttpConn:
    """One keep-alive connection; one request at a time."""

    def __init__(self, host: str, port: int, ssl: ssl_module.SSLContext | None = None):
        self.host, self.port, self.ssl = host, port, ssl
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, headers: dict | None = None, body=None):
        """-> (status, lower-cased headers, body bytes); JSON-encodes a non-bytes body."""
        payload = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        reused = self._writer is not None
        try:
            raw = await self._send(message)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            await self.close()
            if not reused:
                raise WireError(f"connection dropped: {exc!r}")
            # the server closed an idle keep-alive connection before reading this request (its
            # keep-alive timeout): nothing was processed, so send it once more on a new connection
            try:
                raw = await self._send(message)
            except (asyncio.IncompleteReadError, ConnectionError) as exc2:
                await self.close()
                raise WireError(f"connection dropped: {exc2!r}")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        reply_headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                reply_headers[name.strip().lower()] = value.strip()
        if reply_headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._read_chunked()
        else:
            data = await self._reader.readexactly(int(reply_headers.get("content-length", "0")))
        if reply_headers.get("connection", "").lower() == "close":
            await self.close()
        return status, reply_headers, data

    async def _send(self, message: bytes) -> bytes:
        """Write a request and read the reply's head (connecting first when needed)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, ssl=self.ssl)
        self._writer.write(message)
        return await self._reader.readuntil(b"\r\n\r\n")

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self._reader.readline()
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (ConnectionError, ssl_module.SSLError):
                pass
            self._writer = self._reader = None


@dataclass
class Stats:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    def summary(self) -> dict:
        lat = sorted(self.latencies_s)
        wall = max(self.ended - self.started, 1e-9)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

        return {"requests": len(lat), "errors": len(self.errors), "wall_s": round(wall, 2),
                "rps": round(len(lat) / wall, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99)}


def proof(device_key: str, nonce: str, device_id: str) -> str:
    return hmac.new(device_key.encode(), f"{nonce}:{device_id}".encode(), hashlib.sha256).hexdigest()


class SimDevice:
    """One provisioned device (fleet-admin provision output) against a list of (host, port) replicas."""

    def __init__(self, prov: dict, replicas: list[tuple[str, int]], index: int, stats: Stats,
                 ssl: ssl_module.SSLContext | None = None):
        self.prov, self.id = prov, prov["device_id"]
        self.stats = stats
        self._conns = [HttpConn(host, port, ssl) for host, port in replicas]
        self._home = index % len(replicas)
        self.token: str | None = None
        self.state_version = 0
        self.etag: str | None = None

    async def _call(self, replica: int, method: str, path: str, expect: int, body=None, headers=None):
        hdrs = dict(headers or {})
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        t0 = time.perf_counter()
        try:
            status, reply_headers, data = await self._conns[replica].request(method, path, hdrs, body)
        except (OSError, WireError, ValueError) as exc:
            self.stats.errors.append(f"{method} {path}: {exc!r}")
            return None
        self.stats.latencies_s.append(time.perf_counter() - t0)
        if status != expect:
            self.stats.errors.append(f"{method} {path} -> {status} {data[:120]!r}")
            return None
        return reply_headers, data

    async def register(self) -> bool:
        """Challenge on this device's replica, proof on the next one."""
        other = (self._home + 1) % len(self._conns)
        got = await self._call(self._home, "POST", f"/api/devices/{self.id}/challenge", 200)
        if got is None:
            return False
        nonce = json.loads(got[1])["nonce"]
        body = {"id": self.id, "role": self.prov["role"], "firmware_version": "1.0.0", "address": "127.0.0.1",
                "port": 80, "capabilities": [self.prov["role"]], "tenant": self.prov["tenant"],
                "namespace": self.prov["namespace"], "nonce": nonce,
                "proof": proof(self.prov["device_key"], nonce, self.id)}
        got = await self._call(other, "POST", "/api/devices", 200, body)
        if got is None:
            return False
        self.token = json.loads(got[1])["token"]
        return True

    async def round(self, n: int) -> None:
        home = self._home
        await self._call(home, "POST", f"/api/devices/{self.id}/heartbeat", 200,
                         {"uptime_s": n * 30, "free_heap": 120000, "health": {"wifi": "ok"}})
        got = await self._call(home, "GET", f"/api/devices/{self.id}/config", 304 if self.etag else 200,
                               headers={"If-None-Match": self.etag} if self.etag else None)
        if got is not None:
            self.etag = got[0].get("etag")
        state_path = f"/api/tenants/{self.prov['tenant']}/namespaces/{self.prov['namespace']}/devices/{self.id}/state"
        got = await self._call(home, "PUT", state_path, 200, {"reported": {"pump": n % 2}, "version": self.state_version})
        if got is not None:
            self.state_version = json.loads(got[1])["version"]
        now = time.time()
        await self._call(home, "POST", "/api/alarms", 200, {"device_id": self.id, "dropped": 0, "alarms": [
            {"type": "overtemp", "severity": "warning", "source": "t1", "count": 1, "first_seen": now, "last_seen": now}]})

    async def run(self, rounds: int) -> None:
        try:
            if await self.register():
                for n in range(rounds):
                    await self.round(n)
        finally:
            for c in self._conns:
                await c.close()


REQUESTS_PER_ROUND = 4
REQUESTS_TO_REGISTER = 2


async def run_fleet(provs: list[dict], replicas: list[tuple[str, int]], rounds: int,
                    ssl: ssl_module.SSLContext | None = None) -> Stats:
    """Every device registers and runs `rounds` rounds, all at once; returns the recorded stats."""
    stats = Stats()
    devices = [SimDevice(p, replicas, i, stats, ssl) for i, p in enumerate(provs)]
    stats.started = time.perf_counter()
    await asyncio.gather(*(d.run(rounds) for d in devices))
    stats.ended = time.perf_counter()
    return stats


def provision_devices(store, count: int, prefix: str = "sim", tenant: str = "sim", namespace: str = "lab") -> list[dict]:
    """`fleet-admin provision` for `count` devices through one open storage handle (the CLI's own command)."""
    from argparse import Namespace

    from fleet_server.admin_cli import cmd_provision

    return [cmd_provision(store, Namespace(id=f"{prefix}-{i:05d}", tenant=tenant, namespace=namespace, role="relays"))
            for i in range(count)]
