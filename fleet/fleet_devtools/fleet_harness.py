"""Test harness: the real `fleet-server` on loopback, the real `fleet-admin`, a device as firmware sees it.

Shared by both test suites: fleet/tests and the device suite in tests/ (which runs its devices
against this server). It lives in fleet_devtools because `pip install -e fleet` puts that package
on both sessions' path: neither suite reaches into the other's folder."""

from __future__ import annotations

import contextlib
import hashlib
import io
import hmac
import json
import logging
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from fleet_devtools.ports import free_port  # noqa: F401 (the tests import it from here)
from fleet_server import admin_cli, server_cli

BIN = Path(sys.executable).parent
FLEET_DIR = Path(__file__).resolve().parents[1]


def _script(name: str) -> list[str]:
    exe = BIN / name
    if exe.exists():
        return [str(exe)]
    module = {"fleet-server": "fleet_server.server_cli", "fleet-admin": "fleet_server.admin_cli"}[name]
    return [sys.executable, "-m", module]


class FleetServer:
    """One `fleet-server` subprocess on a free loopback port; `db` is a SQLite file or a postgresql:// URL."""

    def __init__(self, db: Path | str, *extra: str, log_dir: Path | None = None, tls=None,
                 port: int = 0, log_name: str | None = None):
        self.db = db
        self.tls = tls  # an ssl.SSLContext the harness's own clients use: the server speaks HTTPS
        self.extra = list(extra)
        self.proc: subprocess.Popen | None = None
        # a port given here is kept across stop()/start(), as devices that know its URL need;
        # otherwise each start takes a free one
        self.fixed_port = port
        self.port = port
        log_dir = log_dir or (db.parent if isinstance(db, Path) else Path(tempfile.gettempdir()))
        self.stderr_path = log_dir / (log_name or f"fleet-server.{uuid.uuid4().hex[:6]}.log")

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> "FleetServer":
        self.port = self.fixed_port or free_port()
        self._stderr = open(self.stderr_path, "ab")  # a restart's log follows the earlier run's
        self.proc = subprocess.Popen(
            _script("fleet-server") + ["--db", str(self.db), "--host", "127.0.0.1", "--port", str(self.port),
                                       *self.extra],
            stdout=subprocess.DEVNULL, stderr=self._stderr)
        deadline = time.monotonic() + 30  # a loaded 2-core machine can take this long to import and bind
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fleet-server exited: {self.stderr_path.read_text()}")
            try:
                if httpx.get(self.url + "/health/livez", timeout=0.5, verify=self.tls or True).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.proc.kill()  # not left running behind a failed test
        self.proc.wait()
        self._stderr.close()
        raise RuntimeError(f"fleet-server did not come up: {self.stderr_path.read_text()[-2000:]}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._stderr.close()
        return rc

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=self.tls or True)


def refused_at_start(capfd, *args: str) -> str:
    """Run fleet-server's own main() in this process with args it must refuse before serving;
    returns the logged reason (main exits 2 with one JSON line, and would otherwise serve)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert server_cli.main(["--port", "0", *args]) == 2
    finally:  # main() points the root logger at stderr; give pytest's handlers back
        root.handlers[:], root.level = saved[0], saved[1]
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "cannot start"
    return line["reason"]


def run_admin(db: Path | str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_script("fleet-admin") + ["--db", str(db), *args],
                          capture_output=True, text=True, timeout=30)


def admin_json(db: Path | str, *args: str):
    """Run fleet-admin's own main() in this process (same code, no interpreter start-up) for set-up steps;
    tests about the CLI itself use run_admin, a real subprocess."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = admin_cli.main(["--db", str(db), *args])
    assert rc == 0, err.getvalue()
    return json.loads(out.getvalue())


def proof(device_key: str, nonce: str, device_id: str) -> str:
    # written out here rather than imported, so the test pins the wire formula itself
    return hmac.new(device_key.encode(), f"{nonce}:{device_id}".encode(), hashlib.sha256).hexdigest()


def new_id(prefix: str = "dev") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def registration_body(prov: dict, nonce: str, **overrides) -> dict:
    body = {"id": prov["device_id"], "role": prov["role"], "firmware_version": "1.0.0",
            "address": "127.0.0.1", "port": 8080, "capabilities": ["relays"],
            "tenant": prov["tenant"], "namespace": prov["namespace"], "nonce": nonce,
            "proof": proof(prov["device_key"], nonce, prov["device_id"])}
    body.update(overrides)
    return body


class Device:
    """A provisioned and registered device, as its firmware would see itself."""

    def __init__(self, server: FleetServer, tenant: str = "acme", namespace: str = "plant1",
                 role: str = "relays", device_id: str | None = None):
        self.server = server
        self.prov = admin_json(server.db, "provision", "--id", device_id or new_id(), "--tenant", tenant,
                               "--namespace", namespace, "--role", role)
        self.id = self.prov["device_id"]
        self.tenant, self.namespace = tenant, namespace
        with server.client() as c:
            nonce = c.post(f"/api/devices/{self.id}/challenge").json()["nonce"]
            res = c.post("/api/devices", json=registration_body(self.prov, nonce))
        assert res.status_code == 200, res.text
        self.registration = res.json()
        self.token = self.registration["token"]

    def client(self) -> httpx.Client:
        return self.server.client(self.token)

    @property
    def state_path(self) -> str:
        return f"/api/tenants/{self.tenant}/namespaces/{self.namespace}/devices/{self.id}/state"


def api_token(db: Path | str, tenant: str, namespace: str, role: str = "admin", ttl: int = 600) -> str:
    return admin_json(db, "token", "--tenant", tenant, "--namespace", namespace, "--role", role,
                      "--ttl", str(ttl))["token"]


def assert_error(res: httpx.Response, status: int, *detail_parts: str) -> dict:
    assert res.status_code == status, (res.status_code, res.text)
    body = res.json()
    assert set(body) >= {"error", "detail"}, body
    for part in detail_parts:
        assert part in body["detail"], body
    return body
