"""fleet-server (fleet_devtools' FleetServer) with one provisioned, registered device, signing
keys and the device's boots: each boot is one run of the unix build on the OTA device scripts
(tests/ota/device_scripts/), configured through OTA_DEVICE_CFG (JSON)."""
import json
import os
import pathlib

from fleet_devtools.fleet_harness import Device, FleetServer, admin_json
from harness.run import ROOT, run_unix
from iot_sign import keygen, load_private_key, pack_bundle, sign_manifest

FACTORY = "1.0.0"
SCRIPTS = ROOT / "tests" / "ota" / "device_scripts"
# the pieces of one boot, joined in order (they share names: cfg, store, mgr, ...)
BUNDLE_BOOT = ("bundle_boot.py", "ota_collaborators.py", "bundle_manager.py", "cut_link.py",
               "run_steps.py")
IMAGE_BOOT = ("image_boot.py", "ota_collaborators.py", "image_manager.py", "cut_link.py",
              "run_steps.py")


def ota_boot_script(names):
    return "".join((SCRIPTS / name).read_text() for name in names)


def device_env(cfg=None):
    """The frozen library of the built image; OTA_TEST_SOURCE=1 runs modules/ from source
    instead (quick iteration without a rebuild)."""
    env = dict(os.environ)
    env.pop("MICROPYPATH", None)
    if os.environ.get("OTA_TEST_SOURCE") == "1":
        env["MICROPYPATH"] = str(ROOT / "modules") + ":.frozen"
    if cfg is not None:
        env["OTA_DEVICE_CFG"] = json.dumps(cfg)
    return env


class OtaFleet:
    """fleet-server on loopback with one provisioned, registered device."""

    boot_script = BUNDLE_BOOT

    def __init__(self, tmp):
        self.tmp = tmp
        self.db = tmp / "fleet.db"
        self.device_id, self.tenant = "pico-ota-1", "acme"
        self.key = keygen(str(tmp / "keys"))
        self.server = FleetServer(self.db, log_dir=tmp, log_name="server.log").start()
        self.url = self.server.url
        device = Device(self.server, tenant=self.tenant, namespace="lab", device_id=self.device_id)
        self.token = device.token
        self.root = tmp / "flash" / "ota"

    def admin(self, *args):
        return admin_json(self.db, *args)

    def publish(self, blob, manifest):
        """Store an artefact; return the manifest as the device is offered it (with url)."""
        path = self.tmp / ("art-%s-%s.bin" % (manifest["version"], manifest["sha256"][:8]))
        path.write_bytes(blob)
        mpath = path.with_suffix(".json")
        mpath.write_text(json.dumps(manifest))
        out = self.admin("publish", "--tenant", self.tenant, "--file", str(path), "--manifest", str(mpath))
        return dict(manifest, url="%s/api/artifacts/%s" % (self.url, out["name"]))

    def bundle(self, version, healthy=True, min_version=None, key=None, extra=None, compress=True):
        """Sign with iot-sign's library (the CLI is covered by ota/test_sign.py)."""
        files = {"ota_app.py": ("VERSION = %r\ndef healthy():\n    return %r\n"
                                % (version, healthy)).encode()}
        files.update(extra or {})
        blob = pack_bundle(files, compress=compress)
        priv = load_private_key(key or self.key["private.pem"])
        return blob, sign_manifest(priv, "bundle", version, min_version, blob)

    def run_boot(self, *steps, **cfg):
        """One boot of the device on the steps; its stdout."""
        cfg = dict({"root": str(self.root), "url": self.url, "token": self.token, "id": self.device_id,
                    "key": pathlib.Path(self.key["public.raw"]).read_bytes().hex(),
                    "steps": list(steps)}, **cfg)
        return run_unix(ota_boot_script(self.boot_script), timeout=60, env=device_env(cfg),
                        cwd=str(self.tmp))

    def boot(self, *steps, **cfg):
        """One boot of the device; returns (BOOT state, APP version, [RESULT...], stdout)."""
        out = self.run_boot(*steps, **cfg)
        boot = app = None
        results = []
        for line in out.splitlines():
            tag, _, rest = line.partition(" ")
            if tag == "BOOT":
                boot = json.loads(rest)
            elif tag == "APP":
                app = rest
            elif tag == "RESULT":
                results.append(json.loads(rest))
        return boot, app, results, out

    def audit(self):
        path = self.root / "logs" / "audit.log"
        return path.read_text() if path.exists() else ""

    def close(self):
        self.server.stop()
