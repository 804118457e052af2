"""A unix simulation device run as a long-lived process (stdout lines in a queue), the source
every device script starts with, and the fleet-server those devices talk to: fleet_devtools'
FleetServer (the one harness fleet/tests uses too) seen from the device side."""
import json
import os
import pathlib
import queue
import re
import subprocess
import threading
import time

import pytest

from fleet_devtools.fleet_harness import FleetServer, run_admin
from fleet_devtools.ports import free_port
from harness.run import BUILD, ROOT
from harness.scripts import shared_script


class Fleet:
    """fleet-server on 127.0.0.1 with its settings file and its own database; `url` is its API
    root as devices are given it. stop()/start() keep the database and the port."""

    def __init__(self, tmp, settings=None):
        self.tmp = pathlib.Path(tmp)
        self.db = self.tmp / "fleet.sqlite"
        self.config = self.tmp / "fleet.json"
        self.config.write_text(json.dumps(settings or {}))
        self.server = FleetServer(self.db, "--config", str(self.config), log_dir=self.tmp,
                                  port=free_port(), log_name="fleet-server.log")
        self.port = self.server.port
        self.url = "http://127.0.0.1:%d/api" % self.port

    def admin(self, *args):
        proc = run_admin(self.db, *args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout) if proc.stdout.strip().startswith(("{", "[")) else proc.stdout

    def provision(self, device_id, tenant="acme", namespace="plant1", role="relays"):
        return self.admin("provision", "--id", device_id, "--tenant", tenant,
                          "--namespace", namespace, "--role", role)

    def start(self):
        self.server.start()
        return self

    def stop(self):
        if self.server.proc is not None and self.server.proc.poll() is None:
            self.server.stop()


def logged_requests(fleet, path):
    """The fleet-server's access-log records for one path, in order."""
    out = []
    for line in (fleet.tmp / "fleet-server.log").read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("msg") == "request" and rec.get("path") == path:
            out.append(rec)
    return out


def prelude(creds, fleet_url, store_dir):
    """MicroPython source: the collaborators every device script starts with
    (device_scripts/fleet_prelude.py), its arguments in one PRELUDE line in front."""
    args = {"device_id": creds["device_id"], "fleet_url": fleet_url, "store": str(store_dir),
            "device_key": creds["device_key"], "tenant": creds["tenant"],
            "namespace": creds["namespace"]}
    return "\nPRELUDE = %r\n" % (args,) + shared_script("fleet_prelude.py")


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


