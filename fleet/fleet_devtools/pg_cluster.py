"""A throwaway PostgreSQL cluster from the distribution's server binaries, for tests and benchmarks.

initdb into a fresh temporary folder, `postgres` on a loopback port (no unix socket), password
authentication, stopped and deleted by stop(). PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` user the Debian package creates (the folder is handed to it).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from fleet_devtools.ports import free_port

SUPERUSER = "fleet"
INSTALL_HINT = "install the Debian package postgresql (fleet/install_system_deps.sh does)"


def find_bindir() -> Path:
    """The newest /usr/lib/postgresql/<major>/bin that has initdb and postgres."""
    env = os.environ.get("FLEET_PG_BINDIR")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                          key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    for d in reversed(candidates):
        if (Path(d) / "initdb").exists() and (Path(d) / "postgres").exists():
            return Path(d)
    raise RuntimeError(f"no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql/*/bin: "
                       f"{INSTALL_HINT}")


class LocalPostgres:
    """start() -> url() for new databases -> stop(). `durable=False` turns fsync off (tests only)."""

    def __init__(self, durable: bool = False, max_connections: int = 200):
        self.bindir = find_bindir()
        self.durable = durable
        self.max_connections = max_connections
        self.password = secrets.token_hex(12)
        self.port = 0
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    # ---- lifecycle -------------------------------------------------------------------
    def start(self, timeout_s: float = 30) -> "LocalPostgres":
        self.dir = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        data, pwfile, log = self.dir / "data", self.dir / "pwfile", self.dir / "server.log"
        pwfile.write_text(self.password + "\n")
        if self._user is not None:
            for p in (self.dir, pwfile):
                os.chown(p, self._user.pw_uid, self._user.pw_gid)
        self._run([str(self.bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                   "-A", "scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"]
                  + ([] if self.durable else ["--no-sync"]))
        self.port = free_port()
        settings = {"listen_addresses": "127.0.0.1", "port": str(self.port), "unix_socket_directories": "",
                    "max_connections": str(self.max_connections), "synchronous_commit": "off",
                    "fsync": "on" if self.durable else "off", "full_page_writes": "on" if self.durable else "off"}
        cmd = [str(self.bindir / "postgres"), "-D", str(data)]
        for k, v in settings.items():
            cmd += ["-c", f"{k}={v}"]
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, **self._as_owner())
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres did not accept connections in {timeout_s:g}s")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint, exit
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # ---- databases -------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"fleet_{secrets.token_hex(4)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def connections(self, dbname: str) -> int:
        """Client connections open to `dbname` now (not counting this query's own)."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                                (dbname,)).fetchone()[0]

    # ---- helpers ---------------------------------------------------------------------
    def _as_owner(self) -> dict:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": [],
                "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}}

    def _run(self, cmd: list[str]) -> None:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **self._as_owner())
        if res.returncode != 0:
            raise RuntimeError(f"{Path(cmd[0]).name} failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
