# OTAUpdateManager: polls the updates service (and checks at once when discovery pushes
# "check_update": check_now()), and composes the OTA wing: iotlib.ota.policy refuses what
# this device must not run, iotlib.ota.fetch downloads it (resumable, hashed as it streams),
# the signature is checked in C (_iotota.verify_p256); a bundle is installed into the
# inactive slot of iotlib.ota.bundle.BundleStore, a full image (kind "image") is put in place
# for the loader by the image stage (iotlib.ota.image, through the hal). Either way the device
# reboots into a trial that ends with commit() once health and readiness pass, or with a
# rollback at the deadline. after_boot() has the loader's verdict on the staged file.
# Trial boots are counted by their owners: BundleStore.boot() for a bundle, the loader for an
# image (docs/ota.md, "Boot counters").
import asyncio
import json
import time

from iotlib.ota import fetch
from iotlib.ota.policy import Refused, accept, trial_left_s
from iotlib.task import BackgroundTask

FS_MARGIN = 16 * 1024  # filesystem room kept beyond a staged image (littlefs metadata, logs)
IDLE, CHECKING, DOWNLOADING, INSTALLING, INSTALLED, TRIAL, ERROR = (
    "idle", "checking", "downloading", "installing", "installed", "trial", "error")


def _default_verify(key, digest, sig):
    from _iotota import verify_p256
    return verify_p256(key, digest, sig)


class OTAUpdateManager:
    """`OTAUpdateManager(updates_url, auth)` as the seed writes it: the rest defaults to an
    HttpClient over auth, the BundleStore in "ota" (the boot path calls its boot()), the
    image's own version, and the device id the device token was issued to."""

    def __init__(self, updates_url, auth=None, device_id=None, http=None, store=None,
                 factory_version=None, public_key=None,
                 health=None, metrics=None, audit=None, alarm=None, reset=None,
                 poll_s=3600, trial_deadline_s=300, auto_commit=False, max_bundle=256 * 1024,
                 chunk=4096, work_dir=None, verify=None, image=None, hal=None, services=None):
        if not (isinstance(updates_url, str) or updates_url is None and services is not None):
            raise TypeError("OTAUpdateManager(updates_url, auth, ...): updates_url must be a "
                            "URL string, not %s" % type(updates_url).__name__)
        if http is None and auth is not None or store is None or factory_version is None:
            from iotlib import seed_defaults  # the seed's form: the Device passes all three
            if http is None and auth is not None:
                http = seed_defaults.http_client(auth)
            if store is None:
                store = seed_defaults.bundle_store()
            if factory_version is None:
                factory_version = seed_defaults.firmware_version()
        self.http = http                  # iotlib.http_client.HttpClient (adds the device token)
        self.store = store                # iotlib.ota.bundle.BundleStore
        self.device_id = device_id        # None: the device token's subject, once registered
        self.updates_url = updates_url.rstrip("/") if updates_url else None
        self.services = services          # Registration: service("updates") at each check
        self.factory_version = factory_version
        if public_key is None:
            from iotlib.ota_key import PUBLIC_KEY as public_key
        self.public_key = public_key
        self.health = health
        self.audit = audit                # iotlib.audit.Audit or anything with record(event, **f)
        self.alarm = alarm                # callable(type, severity, detail) or None
        self.hal = hal                    # iotlib.hal (None: load() at the reset)
        self.reset = reset or self._reset_device  # reset= : a stand-in that takes no cause
        self.poll_s = poll_s
        self.trial_deadline_s = trial_deadline_s
        self.auto_commit = auto_commit
        self.max_bundle = max_bundle
        self.chunk = chunk
        self.work = work_dir or store.root
        self._verify = verify or _default_verify
        self.image = image                # iotlib.ota.image stage, or None: bundles only
        self.state = TRIAL if store.boot_state()["trial"] else IDLE
        self.error = None
        self.done = 0
        self.total = 0
        self.resumed_from = 0
        self._booted_ms = time.ticks_ms()
        self._task = BackgroundTask()
        self._busy = False
        self._refused = self._installs = self._rollbacks = None
        if metrics is not None:
            self._register(metrics)

    def _reset_device(self):
        """The hal's one reset; the next boot's reset_cause says "ota"."""
        from iotlib.boot_counter import CAUSE_OTA
        if self.hal is None:  # the seed's form; the Device hands the hal over
            from iotlib import seed_defaults
            self.hal = seed_defaults.hal()
        self.hal.reset(CAUSE_OTA)

    # ---- metrics ------------------------------------------------------------------------

    def _register(self, m):
        m.gauge("ota_download_bytes", "Bytes of the current update downloaded", read=lambda: self.done)
        m.gauge("ota_download_total_bytes", "Size of the current update", read=lambda: self.total)
        m.gauge("ota_trial", "1 while an uncommitted bundle runs", read=lambda: int(self.on_trial()))
        self._refused = m.counter("ota_refused_total", "Updates refused", labels=("reason",))
        self._installs = m.counter("ota_installs_total", "Bundles installed")
        self._rollbacks = m.counter("ota_rollbacks_total", "Bundle rollbacks")

    def progress(self):
        return {"state": self.state, "done": self.done, "total": self.total,
                "percent": (100 * self.done // self.total) if self.total else 0,
                "resumed_from": self.resumed_from, "error": self.error}

    def image_mode(self):
        """The loader's boot mode for this image: normal, trial, safe, none (no loader)."""
        return self.image.boot_mode() if self.image is not None else "none"

    def image_trial(self):
        return self.image_mode() == "trial"

    def on_trial(self):
        return self.store.boot_state()["trial"] or self.image_trial()

    def current_version(self):
        return self.store.running_version() or self.factory_version

    def boot_state(self):
        """What OTA.GetBootState answers: the running bundle, trial, boots, deadline, progress."""
        bs = self.store.boot_state()
        mode = self.image_mode()
        bs["image_mode"] = mode
        bs["image_trial_boots"] = self.image.trial_boots() if mode == "trial" else 0
        bs["trial"] = bs["trial"] or mode == "trial"
        bs["factory_version"] = self.factory_version
        bs["running_version"] = self.current_version()
        left = None
        if bs["trial"]:
            left = trial_left_s(self.trial_deadline_s, self._booted_ms)
        bs["deadline_s"] = self.trial_deadline_s
        bs["deadline_left_s"] = left
        bs["ota"] = self.progress()
        return bs

    # ---- audit and alarms ---------------------------------------------------------------

    def _record(self, event, **fields):
        if self.audit is not None:
            self.audit.record(event, **fields)

    def _refuse(self, reason, detail, manifest):
        self.state, self.error = ERROR, "%s: %s" % (reason, detail)
        if self._refused is not None:
            self._refused.inc(labels=(reason,))
        self._record("ota.refused", reason=reason, detail=detail,
                     version=manifest.get("version"), current=self.current_version())
        if self.alarm is not None:
            self.alarm("ota_refused", "warning", "%s: %s" % (reason, detail))
        return {"ok": False, "reason": reason, "detail": detail}

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self):
        self._task.start(self._run)

    async def stop(self):
        self._task.stop()

    def register(self, metrics, health):
        self._register(metrics)  # health is a collaborator here: commit asks its readiness

    async def _run(self):
        if self.on_trial():
            await self.run_trial()
        while True:
            await self.check_now()
            await asyncio.sleep(self.poll_s)

    async def check_now(self):
        """check() that never raises: the poller, and a push from discovery ("check_update")."""
        try:
            return await self.check()
        except Exception as e:  # the poller must survive a bad network day
            self.state, self.error = ERROR, "check failed: %s" % e

    async def run_trial(self, tick_s=1):
        """Wait for commit (explicit, or automatic once ready); roll back at the deadline."""
        while self.on_trial():
            if self.auto_commit and self._ready()[0]:
                self.commit()
                break
            if trial_left_s(self.trial_deadline_s, self._booted_ms) == 0:
                reason = "deadline: not committed within %d s" % self.trial_deadline_s
                if self.image_trial():
                    self._image_trial_failed(reason)
                else:
                    self.rollback(reason, reboot=True)
                break
            await asyncio.sleep(tick_s)

    def _ready(self):
        if self.health is None:
            return True, {}
        return self.health.readyz()

    # ---- admin operations ---------------------------------------------------------------

    def _image_trial_failed(self, reason):
        """No older image to go back to: reset uncommitted; the loader counts the trial boot
        and boots the image in safe mode after the last one."""
        self._record("ota.trial_failed", kind="image", reason=reason, version=self.current_version(),
                     boots=self.image.trial_boots())
        if self.alarm is not None:
            self.alarm("ota_trial_failed", "warning", "image: %s" % reason)
        self.reset()

    def commit(self, reboot=True):
        """Commit the bundle (or image) on trial, only while health and readiness pass. An
        image is confirmed to the loader, which records it at the reset that follows
        (reboot=False: the caller resets)."""
        if not self.on_trial():
            return {"ok": False, "reason": "not_on_trial"}
        ok, checks = self._ready()
        if not ok:
            self._record("ota.commit_refused", version=self.current_version(), checks=checks)
            return {"ok": False, "reason": "not_ready", "checks": checks}
        if self.image_trial() and not self.store.boot_state()["trial"]:
            self.image.confirm()
            self.state = IDLE
            self._record("ota.committed", kind="image", version=self.current_version())
            if reboot:
                self.reset()
            return {"ok": True, "version": self.current_version(), "kind": "image",
                    "reboot_required": True}
        self.store.commit()
        self.state = IDLE
        self._record("ota.committed", version=self.current_version())
        return {"ok": True, "version": self.current_version()}

    def rollback(self, reason="admin", reboot=False):
        """Back to the previous bundle (or the factory code) from the next boot."""
        if self.image_trial() and not self.store.boot_state()["trial"]:
            from iotlib.ota.layout import MAX_TRIAL_BOOTS  # the loader's count (layout.h)
            return {"ok": False, "reason": "image_trial",
                    "detail": "an image on trial has no previous image: it is confirmed, or "
                              "reset unconfirmed %d times it boots in safe mode"
                              % MAX_TRIAL_BOOTS}
        before = self.current_version()
        after = self.store.rollback(reason) or self.factory_version
        self.state = IDLE
        if self._rollbacks is not None:
            self._rollbacks.inc()
        self._record("ota.rollback", reason=reason, version=before, to=after)
        if self.alarm is not None:
            self.alarm("ota_rollback", "warning", "%s -> %s: %s" % (before, after, reason))
        if reboot:
            self.reset()
        return {"ok": True, "from": before, "to": after, "reboot_required": True}

    async def admin(self, action, body=None):
        """One entry point for the device API: (HTTP status, JSON body).
        action: "state" (GET), "commit", "rollback", "check" (POST)."""
        if action == "state":
            return 200, self.boot_state()
        if action == "commit":
            r = self.commit(reboot=False)
            if r.get("reboot_required"):  # answer first, then reset into the confirmed image
                asyncio.create_task(self._reset_soon())
            return (200 if r["ok"] else 409), r
        if action == "rollback":
            return 200, self.rollback((body or {}).get("reason", "admin"))
        if action == "check":
            r = await self.check(reboot=False)
            return 200, r
        return 404, {"error": "unknown OTA action %r" % action}

    async def _reset_soon(self, ms=500):
        await asyncio.sleep_ms(ms)
        self.reset()

    # ---- update path --------------------------------------------------------------------

    def _updates(self):
        s = self.services
        return (s.service("updates") if s is not None else None) or self.updates_url

    async def check(self, reboot=True):
        """Poll the updates service once; install what it offers."""
        if self._updates() is None:
            return {"ok": False, "reason": "not_registered", "detail": "no updates service yet"}
        if self.device_id is None:
            # built the seed's way: the id is the subject of the token discovery issued us
            # (read, not verified: it is our own token)
            token = self.http.auth.device_token() if self.http.auth is not None else None
            if not token:
                return {"ok": False, "reason": "not_registered", "detail": "no device token yet"}
            from iotlib.jwt import b64url_decode
            self.device_id = json.loads(b64url_decode(token.split(".")[1]))["sub"]
        self.state = CHECKING
        url = "%s/devices/%s/update?version=%s" % (self._updates(), self.device_id,
                                                   self.current_version())
        r = await self.http.request("GET", url)
        if r.status == 204:
            self.state = IDLE
            return {"ok": True, "update": None}
        if r.status != 200:
            self.state, self.error = ERROR, "updates service: HTTP %d" % r.status
            return {"ok": False, "reason": "http", "detail": r.status}
        return await self.offer(r.json(), reboot=reboot)

    async def offer(self, manifest, reboot=True):
        """Take one manifest (polled, or pushed by discovery): check, download, install."""
        if self._busy:
            return {"ok": False, "reason": "busy"}
        self._busy = True
        try:
            self._accept(manifest)
            if manifest["kind"] == "image":
                await self._stage_image(manifest)
                slot = "image"
            else:
                path = await fetch.fetch(self.http, self._artefact_url(manifest), manifest,
                                         self.work, self.chunk, self._progress)
                self.state = INSTALLING
                slot = self.store.install(path, manifest["version"])
                fetch.remove(self.work)
        except Refused as e:
            return self._refuse(e.args[0], e.args[1], manifest)
        except ValueError as e:  # a bundle that does not unpack
            return self._refuse("bad_bundle", str(e), manifest)
        except OSError as e:  # link lost: the partial download is kept and resumed
            self.state, self.error = ERROR, "download interrupted at byte %d: %s" % (self.done, e)
            return {"ok": False, "reason": "interrupted", "detail": self.error}
        finally:
            self._busy = False
        self.state = INSTALLED
        if self._installs is not None:
            self._installs.inc()
        self._record("ota.installed", version=manifest["version"], slot=slot,
                     previous=self.current_version())
        if reboot:
            self.reset()
        return {"ok": True, "version": manifest["version"], "slot": slot, "reboot_required": True}

    def _accept(self, m):
        """Everything decided before a byte is downloaded (iotlib.ota.policy)."""
        limits = {"bundle": self.max_bundle}
        if self.image is not None:
            limits["image"] = self.image.APP_SIZE
        accept(m, self.current_version(), self.on_trial(), self.store.state().get("failed_version"),
               limits, self._verify, self.public_key)

    def _artefact_url(self, m):
        url = m["url"]
        if url.startswith("/"):  # relative to the updates service's host
            scheme, _, rest = self._updates().partition("://")
            url = scheme + "://" + rest.split("/", 1)[0] + url
        return url

    async def _stage_image(self, m):
        """Download the staged file (the same resumable part file as bundles), then put it in
        place for the loader. Refused before the first byte when the filesystem lacks room
        for it, and at the first chunk when its header is not an image this loader takes."""
        have = fetch.part_size(self.work, m["sha256"])
        free = self.image.free_bytes()
        if free < m["size"] - have + FS_MARGIN:
            raise Refused("no_space", "the image needs %d bytes of the filesystem, %d are free"
                          % (m["size"] - have + FS_MARGIN, free))
        path = await fetch.fetch(self.http, self._artefact_url(m), m, self.work, self.chunk,
                                 self._progress, lambda body: self._check_image_header(body, m))
        self.state = INSTALLING
        try:
            self.image.install(path)
        except ValueError as e:
            fetch.remove(self.work)
            raise Refused("bad_image", str(e))

    def _check_image_header(self, body, m):
        try:
            info = self.image.check_header(body)
        except ValueError as e:
            raise Refused("bad_image", str(e))
        if info["version"] != m["version"][:16]:  # the header names the signed version
            raise Refused("bad_image", "the image header says version %r" % info["version"])

    def after_boot(self):
        """What the loader did with the staged file at this boot (iotlib.ota.image); the stage
        deletes a file that has served. A refusal is reported like any other: alarm, audit,
        iot_ota_refused_total{reason="loader_<verdict>"}. Call once per boot."""
        if self.image is None or self.image.verdict() == "none":
            return "none"
        info = self.image.staged() or {}
        v = self.image.after_boot()
        if v != "installed":
            self._refuse("loader_" + v, "the loader refused the staged image", info)
        return v

    def _progress(self, done, total, resumed_from):
        self.state, self.done, self.total, self.resumed_from = DOWNLOADING, done, total, resumed_from
