"""A role started the way a user does it: a device.json in a folder, the unix build's boot,
serving on a free loopback port; and the API tokens the fleet would issue for it."""
import json
import os
import subprocess
import time

import httpx
import jwt

from fleet_devtools.ports import free_port
from harness.run import BUILD

API_KEY = "tenant-api-key-for-tests-0123456789abcdef"
TENANT = "acme"
NAMESPACE = "plant-1"


def make_token(role="admin", tenant=TENANT, namespace=NAMESPACE, key=API_KEY, ttl=600,
               **claims):
    """An API JWT as the fleet issues it (iss fleet, aud iotlib, HS256 with the tenant key)."""
    now = int(time.time())
    body = {"sub": "tester", "tenant": tenant, "namespace": namespace, "role": role,
            "iss": "fleet", "aud": "iotlib", "iat": now, "exp": now + ttl}
    body.update(claims)
    return jwt.encode(body, key, algorithm="HS256")


def auth(token=None, **kw):
    return {"Authorization": "Bearer " + (token or make_token(**kw))}


class RoleDevice:
    """One unix-build device process serving on a free loopback port."""

    def __init__(self, tmp_path, role, **settings):
        self.port = free_port()
        self.dir = tmp_path / ("dev-%d" % self.port)
        self.dir.mkdir()
        self.settings = {"device_id": "%s-%d" % (role, self.port), "device_key": "dk-test",
                         "api_key": API_KEY, "tenant": TENANT, "namespace": NAMESPACE,
                         "role": role, "host": "127.0.0.1", "port": self.port}
        self.settings.update(settings)
        (self.dir / "device.json").write_text(json.dumps(self.settings))
        self.url = "http://127.0.0.1:%d" % self.port
        self.ws_url = "ws://127.0.0.1:%d/ws" % self.port
        self.proc = None
        self.log = self.dir / "device.log"

    def start(self, timeout=10):
        binary = BUILD / "unix" / "micropython"
        assert binary.exists(), "build it: firmware/build.sh unix"
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)  # frozen modules only, as shipped
        self._out = open(self.log, "w")
        self.proc = subprocess.Popen([str(binary), "-c", "import iot_boot\niot_boot.run()"],
                                     cwd=self.dir, stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("device exited %s:\n%s" % (self.proc.returncode,
                                                                 self.output()))
            try:
                if httpx.get(self.url + "/health/livez", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("device did not come up:\n" + self.output())

    def output(self):
        return self.log.read_text() if self.log.exists() else ""

    def metric(self, name):
        text = httpx.get(self.url + "/metrics", timeout=5).text
        total = None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total = (total or 0) + float(line.rsplit(" ", 1)[1])
        return total

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._out.close()
        assert "Traceback" not in self.output(), self.output()
