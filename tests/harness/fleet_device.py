"""Shared pieces for the fleet-manager tests: the reference fleet-server on loopback, a unix
simulation device run as a long-lived process, and a small SNTP responder.

No test lives here; the test_fleetmgr_*.py files import from it.
"""
import json
import os
import pathlib
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import BUILD, ROOT
from fleet_devtools.sntp import SntpResponder  # noqa: F401 (the tests import it from here)

VENV_BIN = pathlib.Path(sys.executable).parent


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fleet:
    """fleet-server on 127.0.0.1 with its own database; stop()/start() keep the database."""

    def __init__(self, tmp, settings=None):
        self.tmp = pathlib.Path(tmp)
        self.db = self.tmp / "fleet.sqlite"
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/api" % self.port
        self.config = self.tmp / "fleet.json"
        self.config.write_text(json.dumps(settings or {}))
        self.proc = None

    def admin(self, *args):
        proc = subprocess.run([str(VENV_BIN / "fleet-admin"), "--db", str(self.db), *args],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else proc.stdout

    def provision(self, device_id, tenant="acme", namespace="plant1", role="relays"):
        return self.admin("provision", "--id", device_id, "--tenant", tenant,
                          "--namespace", namespace, "--role", role)

    def start(self):
        self.log = open(self.tmp / "fleet-server.log", "a")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "fleet-server"), "--db", str(self.db), "--host", "127.0.0.1",
             "--port", str(self.port), "--config", str(self.config)],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.tmp / "fleet-server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("fleet-server did not start")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()


@pytest.fixture
def fleet(tmp_path):
    # plain HTTP on loopback: a device script without api_key (the seed's form) may fetch it
    f = Fleet(tmp_path, {"ntp_servers": ["127.0.0.1:9"], "heartbeat_s": 5, "api_key_over_http": True})
    yield f
    f.stop()


def prelude(creds, fleet_url, store_dir):
    """MicroPython source: the collaborators every device script starts with."""
    return """
import asyncio, sys, time
from iotlib.auth_manager import AuthManager
from iotlib.storage import Storage
from iotlib.boot_counter import BootCounter
from iotlib.alarm_manager import AlarmManager
from iotlib.watchdog_manager import WatchdogManager
from iotlib.state_manager import StateManager
from iotlib.timesync_manager import TimeSyncManager
def log(*a):
    print(*a)
DEVICE = %r
SD = %r
store = Storage(%r)
auth = AuthManager(%r, tenant=%r, namespace=%r)
boot = BootCounter(store)
boot.record_boot()
print("BOOT", boot.boot_count, boot.reset_cause, boot.unconfirmed)
""" % (creds["device_id"], fleet_url, str(store_dir), creds["device_key"], creds["tenant"],
       creds["namespace"])


class Device:
    """The unix simulation binary running one script; stdout lines arrive in a queue."""

    def __init__(self, code, cwd, env=None):
        binary = BUILD / "unix" / "micropython"
        if not binary.exists():
            pytest.fail("%s is missing: build it with `firmware/build.sh unix`" % binary)
        run_env = dict(os.environ)
        if os.environ.get("IOTLIB_SOURCE"):  # iterate on modules/ without rebuilding
            run_env["MICROPYPATH"] = "%s/modules:.frozen" % ROOT
        run_env.update(env or {})
        self.proc = subprocess.Popen([str(binary), "-c", code], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, cwd=cwd, env=run_env)
        self.lines = []
        self._q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))
        self._q.put(None)

    def expect(self, pattern, timeout=15):
        """Wait for a stdout line matching pattern; return its match."""
        rx = re.compile(pattern)
        for seen in self.lines:
            m = rx.search(seen)
            if m:
                self.lines.remove(seen)
                return m
        deadline = time.time() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                raise AssertionError("no line matching %r within %ss; output so far:\n%s"
                                     % (pattern, timeout, "\n".join(self.lines)))
            if line is None:
                self._q.put(None)
                raise AssertionError("device exited (%s) before %r; output:\n%s"
                                     % (self.proc.wait(), pattern, "\n".join(self.lines)))
            m = rx.search(line)
            if m:
                return m
            self.lines.append(line)

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


