# Device configuration from the fleet's config service: conditional GET (ETag), validation
# against the device schema, two-phase hot reload (every subscriber may veto, then all are
# told which sections changed) and a last-known-good copy on flash to boot from when the
# server cannot be reached.
import asyncio

from iotlib.schema import SchemaError
from iotlib.task import BackgroundTask

LKG_FILE = "config.json"


class ConfigRejected(ValueError):
    pass


def changed_sections(old, new):
    return [key for key in new if old is None or old.get(key) != new[key]]


class ConfigManager:
    def __init__(self, base_url, auth, device_id, http=None, store=None, interval_s=30,
                 validate=None, audit=None, logger=None, network=None, required=True,
                 services=None):
        if not (isinstance(base_url, str) or base_url is None and services is not None) \
                or not isinstance(device_id, str):
            raise TypeError("ConfigManager(base_url, auth, device_id): base_url and device_id "
                            "must be strings, not %s and %s"
                            % (type(base_url).__name__, type(device_id).__name__))
        self.base_url = base_url.rstrip("/") if base_url else None
        self.services = services  # Registration: service("config") at each fetch, else base_url
        self.auth = auth
        self.device_id = device_id
        if http is None or store is None or validate is None:  # built the seed's way
            from iotlib import seed_defaults
            http = http or seed_defaults.http_client(auth)
            store = store or seed_defaults.storage()
            validate = validate or seed_defaults.core_validator()
        self.http = http
        self.store = store
        self.interval_s = interval_s
        self.validate = validate
        self.audit = audit
        self.logger = logger
        self.network = network  # optional NetworkManager: fetch only while it is up
        self.required = required  # False: readiness does not wait for a configuration
        self.config = None
        self.version = None
        self.etag = None
        self.source = None  # "server" or "flash"
        self.last_error = None
        self.fetches = 0
        self._subscribers = []  # (on_change, veto, sections)
        self._task = BackgroundTask()
        self._version_metric = None
        self._rejected_metric = None

    def url(self):
        """This device's config URL (None while no config service is known)."""
        s = self.services
        base = (s.service("config") if s is not None else None) or self.base_url
        return "%s/devices/%s/config" % (base, self.device_id) if base else None

    # ---- subscribers ------------------------------------------------------------------------

    def subscribe(self, on_change=None, veto=None, sections=None):
        """on_change(changed, config) when a change is applied (raising ValueError there
        refuses it too); veto(changed, new_config) before any on_change runs, returning a
        reason string to refuse it (None to accept). sections limits both to changes
        touching those top-level keys."""
        self._subscribers.append((on_change, veto, sections))

    def _interested(self, sections, changed):
        return sections is None or any(s in changed for s in sections)

    # ---- applying ---------------------------------------------------------------------------

    def apply(self, raw, version=None, etag=None, source="server"):
        """Validate and install a config; return the changed sections or raise
        SchemaError/ConfigRejected (the running config stays as it was)."""
        try:
            new = self.validate(raw)
        except SchemaError as e:
            self._reject("invalid", e.path + ": " + e.reason, version)
            raise
        changed = changed_sections(self.config, new)
        for on_change, veto, sections in self._subscribers:
            if veto is not None and self._interested(sections, changed):
                reason = veto(changed, new)
                if reason:
                    self._reject("vetoed", reason, version)
                    raise ConfigRejected(reason)
        old = self.config
        self.config = new
        self._notify(changed, new, old, version)
        self.version = version
        self.etag = etag
        self.source = source
        self.last_error = None
        if self._version_metric is not None:
            self._version_metric.set(version or 0)
        if changed and self.audit is not None:
            self.audit.record("config_applied", version=version, source=source,
                              sections=",".join(changed))
        return changed

    def _notify(self, changed, new, old, version):
        """Tell subscribers; one raising ValueError also vetoes: the ones already told get the
        old config back and the change is refused."""
        if not changed:
            return
        told = []
        for on_change, veto, sections in self._subscribers:
            if on_change is None or not self._interested(sections, changed):
                continue
            try:
                on_change(changed, new)
            except ValueError as e:
                self.config = old
                if old is not None:
                    for undo in told:
                        try:
                            undo(changed, old)
                        except Exception:
                            pass  # best effort: the subscriber accepted this config before
                self._reject("vetoed", str(e), version)
                raise ConfigRejected(str(e))
            told.append(on_change)

    def _reject(self, kind, reason, version):
        self.last_error = "%s: %s" % (kind, reason)
        if self._rejected_metric is not None:
            self._rejected_metric.inc(labels=(kind,))
        if self.audit is not None:
            self.audit.record("config_rejected", version=version, reason=self.last_error)
        if self.logger is not None:
            self.logger.log("WARNING", "config rejected", {"reason": self.last_error})

    # ---- last known good --------------------------------------------------------------------

    def load_last_known_good(self):
        """Install the config saved on flash; True when there was a valid one."""
        saved = self.store.read_json(LKG_FILE)
        if not isinstance(saved, dict) or "config" not in saved:
            return False
        try:
            self.apply(saved["config"], saved.get("version"), saved.get("etag"), "flash")
        except (SchemaError, ConfigRejected):
            return False
        return True

    def _save(self, raw):
        self.store.write_json(LKG_FILE, {"version": self.version, "etag": self.etag,
                                         "config": raw})

    # ---- fetching ---------------------------------------------------------------------------

    async def fetch_once(self):
        """One conditional GET: "updated", "unchanged", "rejected: <path>: <reason>" or
        "error: <reason>" (the running config is kept on every outcome but "updated")."""
        self.fetches += 1
        url = self.url()
        if url is None:
            self.last_error = "no config service yet"
            return "error: " + self.last_error
        headers = {"If-None-Match": self.etag} if self.etag else None
        try:
            resp = await self.http.get(url, headers=headers)
        except OSError as e:
            self.last_error = "unreachable: %s" % e
            return "error: " + self.last_error
        if resp.status == 304:
            self.source = "server"
            return "unchanged"
        if resp.status != 200:
            self.last_error = "HTTP %d" % resp.status
            return "error: " + self.last_error
        try:
            doc = resp.json()
            raw, version = doc["config"], doc.get("version")
        except (ValueError, KeyError, TypeError):
            self.last_error = "malformed reply"
            return "error: " + self.last_error
        try:
            changed = self.apply(raw, version, resp.headers.get("etag"), "server")
        except (SchemaError, ConfigRejected) as e:
            return "rejected: %s" % e
        self._save(raw)
        return "updated" if changed else "unchanged"

    async def fetch_config_loop(self):
        """Forever: poll the server; boots from last-known-good first when nothing is loaded.
        start()'s task, or the caller's own: stop() ends it either way."""
        if not self._task.start():
            return
        if self.config is None:
            self.load_last_known_good()
        while True:
            if self.network is not None:
                await self.network.wait_up()
            await self.fetch_once()
            await asyncio.sleep(self.interval_s)

    async def start(self):
        if self.config is None:  # at once: what starts after it sees the last-known-good
            self.load_last_known_good()
        self._task.start(self.fetch_config_loop)

    async def stop(self):
        self._task.stop()

    def register(self, metrics, health):
        # standalone (no discovery URL) device.json is the configuration: not a readiness condition
        self._version_metric = metrics.gauge("config_version", "Version of the running config")
        self._rejected_metric = metrics.counter("config_rejected_total", "Configs refused",
                                                ("kind",))
        health.add_check("config", lambda: (self.config is not None,
                                            self.source or self.last_error or "none yet"),
                         self.required)
