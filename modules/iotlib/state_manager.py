# StateManager: desired and reported state per tenant and namespace, versioned.
#
#   PUT {state}/tenants/{t}/namespaces/{ns}/devices/{id}/state {"reported", "version"}
#       -> {"version", "desired", "desired_version"}   (409 + current version when stale)
#   GET same path -> {"desired", "desired_version", "reported", "version"}
#
# - report(...) merges into the reported state and pushes after `debounce_ms` (a burst of
#   changes becomes one PUT). The whole reported state is sent each time, so a queue of
#   offline changes collapses into its newest values; it is persisted with a dirty flag, so it
#   also survives a reboot and syncs when the service answers again.
# - Desired state is pulled at start and on reconnect (and comes back with every PUT); a newer
#   desired_version is handed to the handler the role registered with on_desired().
import asyncio

from iotlib.task import BackgroundTask

STATE_PATH = "%s/tenants/%s/namespaces/%s/devices/%s/state"


class StateManager:
    def __init__(self, state_url, auth, device_id, http=None, store=None, name="state.json",
                 debounce_ms=200, retry_ms=2000, poll_ms=None, tenant=None, namespace=None,
                 alarms=None, log=None, services=None):
        if state_url is not None and not isinstance(state_url, str) \
                or not isinstance(device_id, str):
            raise TypeError("StateManager(state_url, auth, device_id): state_url (or None) and "
                            "device_id must be strings, not %s and %s"
                            % (type(state_url).__name__, type(device_id).__name__))
        self.url = state_url.rstrip("/") if state_url else None
        self.services = services  # Registration: service("state") at each call, else url
        self.auth = auth
        self.device_id = device_id
        self._http = http
        self.store = store
        self.name = name
        self.debounce_ms = debounce_ms
        self.retry_ms = retry_ms
        self.poll_ms = poll_ms          # optional periodic pull of desired state
        self.tenant = tenant or getattr(auth, "tenant", None)
        self.namespace = namespace or getattr(auth, "namespace", None)
        self.alarms = alarms
        self.log = log
        data = (store.read_json(name) if store is not None else None) or {}
        self.reported = data.get("reported", {})
        self.version = data.get("version", 0)              # server's reported version
        self.dirty = data.get("dirty", False)              # local changes not yet acknowledged
        self.desired = data.get("desired", {})
        self.desired_version = data.get("desired_version", 0)  # last one applied
        self.pushes = 0
        self.online = False
        self._handlers = []
        self._task = BackgroundTask()
        self._changed = asyncio.Event()
        self._pull_now = True

    @property
    def http(self):
        if self._http is None:  # built the seed's way: a client of its own, on first use
            from iotlib.seed_defaults import http_client
            self._http = http_client(self.auth)
        return self._http

    def _say(self, *args):
        if self.log is not None:
            self.log(*args)

    def _path(self):
        s = self.services
        base = (s.service("state") if s is not None else None) or self.url
        if base is None:
            raise OSError("no state service yet")
        return STATE_PATH % (base, self.tenant, self.namespace, self.device_id)

    def _save(self):
        if self.store is not None:
            self.store.write_json(self.name, {
                "reported": self.reported, "version": self.version, "dirty": self.dirty,
                "desired": self.desired, "desired_version": self.desired_version})

    # ---- the role's side ------------------------------------------------------------------

    def on_desired(self, handler):
        """handler(desired: dict) (plain or async) runs for each newer desired state."""
        self._handlers.append(handler)

    def report(self, values=None, **kw):
        """Merge values into the reported state; pushed after the debounce."""
        changes = dict(values or {})
        changes.update(kw)
        changed = False
        for k, v in changes.items():
            if self.reported.get(k, None) != v or k not in self.reported:
                self.reported[k] = v
                changed = True
        if changed:
            self.dirty = True
            self._save()
            self._changed.set()
        return changed

    def reconnected(self):
        """Network came back (NetworkManager 'up' event): pull desired and push what queued."""
        self._pull_now = True
        self._changed.set()

    # ---- the service's side ---------------------------------------------------------------

    async def _apply(self, desired, desired_version):
        if desired_version is None or desired_version <= self.desired_version:
            return False
        self.desired = desired or {}
        self.desired_version = desired_version
        self._save()
        self._say("state: desired v%d" % desired_version, self.desired)
        for handler in self._handlers:
            try:
                r = handler(self.desired)
                if hasattr(r, "send"):
                    await r
            except Exception as e:
                self._say("state: handler failed", e)
                if self.alarms is not None:
                    self.alarms.report_alarm({"type": "desired_state_failed", "severity": "warning",
                                              "source": "state", "message": str(e)[:200]})
        return True

    async def pull(self):
        """GET desired/reported; apply a newer desired state. Raises OSError when unreachable."""
        r = await self.http.request("GET", self._path())
        if r.status != 200:
            raise OSError("state GET status %d" % r.status)
        doc = r.json()
        # dirty or not, our next PUT replaces the server's current version
        self.version = doc.get("version", self.version)
        await self._apply(doc.get("desired"), doc.get("desired_version"))
        self._save()
        return doc

    async def push(self):
        """PUT the reported state if dirty; True when the service has it."""
        if not self.dirty:
            return True
        sent = dict(self.reported)
        for _ in range(3):
            r = await self.http.request("PUT", self._path(),
                                        json={"reported": sent, "version": self.version})
            if r.status == 409:  # someone (a restored server, another boot) moved it: rebase
                try:
                    current = r.json().get("version")
                except ValueError:
                    current = None
                if current is None:
                    current = (await self.pull()).get("version", 0)
                self.version = current
                continue
            if r.status != 200:
                raise OSError("state PUT status %d" % r.status)
            doc = r.json()
            self.version = doc["version"]
            self.pushes += 1
            if self.reported == sent:   # nothing new arrived while the PUT was in flight
                self.dirty = False
            self._save()
            await self._apply(doc.get("desired"), doc.get("desired_version"))
            return not self.dirty
        raise OSError("state PUT kept conflicting")

    async def sync(self):
        """Push if dirty, then pull if asked; marks online/offline. Pushing first means the
        fleet learns the real state (e.g. safe states after a restart) before a desired
        state is applied on top of it."""
        try:
            await self.push()
            if self._pull_now:
                await self.pull()
                self._pull_now = False
            if not self.online:
                self._say("state: online")
            self.online = True
            return True
        except Exception as e:
            if self.online:
                self._say("state: offline", e)
            self.online = False
            self._pull_now = True   # whatever changed meanwhile, fetch it on the way back
            return False

    async def sync_loop(self):
        """Forever: push and pull (start()'s task, or the caller's own: stop() ends it)."""
        if not self._task.start():
            return
        while True:
            ok = await self.sync()
            if ok and self.dirty:
                continue
            wait = self.poll_ms if ok else self.retry_ms
            try:
                if wait is None:
                    await self._changed.wait()
                else:
                    await asyncio.wait_for_ms(self._changed.wait(), wait)
            except asyncio.TimeoutError:
                if ok:
                    self._pull_now = True
            self._changed.clear()
            await asyncio.sleep_ms(self.debounce_ms)   # collect a burst into one PUT

    async def start(self):
        self._task.start(self.sync_loop)

    async def stop(self):
        self._task.stop()

    def register(self, metrics, health):
        pass  # no metrics or checks of its own
