# AlarmManager: deduplicated alarms, buffered while offline, persisted across reboots, sent in
# batches to the alarms service (POST {alarms}/alarms).
#
# - Dedup key (type, source): a repeat adds to `count`, moves `last_seen`, keeps the highest
#   severity and the newest message.
# - The buffer holds at most `capacity` distinct alarms; when full, the lowest-severity, oldest
#   one is dropped first (a newcomer that ranks below all of them is itself dropped) and
#   `dropped` counts it; the service is told how many with the next batch.
# - Every change is written to flash at once (atomic rename through Storage), so a reset or a
#   power cut loses nothing already reported.
# - guard(coro, source) and install(loop) turn exceptions escaping a task into alarms.
# - Conditions (a threshold crossed, the clock drifted, SNTP failing) have episodes: every
#   reported (type, source) is `active` until clear_alarm() ends it, which tells the fleet
#   once (its "cleared" list; the alarms service marks the alarm cleared by the device);
#   raise_condition() reports only when not active already, so a condition seen on every
#   sample or sync raises one alarm per episode. `active` is kept on flash with the rest:
#   a condition that ended while the device was off is cleared after the reboot.
# - Used on its own (the seed's `AlarmManager(url, auth, id).report_alarm({...})`) it sends
#   by itself: the first report starts the sender. Once start() or stop() has been called,
#   or with autostart=False (the Device: enabled_components decides), only they do.
import asyncio
import time

from iotlib.task import BackgroundTask

SEVERITIES = ("info", "warning", "critical")


def _rank(severity):
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return 1


class AlarmManager:
    def __init__(self, alarms_url, auth, device_id, http=None, store=None, name="alarms.json",
                 capacity=32, batch=16, interval_ms=5000, clock=None, log=None, autostart=True,
                 services=None):
        if alarms_url is not None and not isinstance(alarms_url, str):
            raise TypeError("AlarmManager: alarms_url must be a URL string or None, not %s"
                            % type(alarms_url).__name__)
        if not isinstance(device_id, str):
            raise TypeError("AlarmManager: device_id must be a string, not %s"
                            % type(device_id).__name__)
        self.url = alarms_url.rstrip("/") if alarms_url else None
        self.services = services  # Registration: service("alarms") at each send, else url
        self.auth = auth
        self.device_id = device_id
        self._http = http
        self.store = store
        self.name = name
        self.capacity = capacity
        self.batch = batch
        self.interval_ms = interval_ms
        self.clock = clock      # the device's iotlib.clock.Clock (first/last seen)
        self._unsynced = []     # (type, source) stamped before the clock was trusted
        self.log = log
        self.sent = 0
        self.autostart = autostart
        self._task = BackgroundTask()
        self._wake = asyncio.Event()
        data = store.read_json(name) if store is not None else None
        data = data or {}
        self.pending = data.get("alarms", [])   # list of dicts in the wire format
        self.dropped = data.get("dropped", 0)   # not yet reported to the service
        self.dropped_total = data.get("dropped_total", 0)
        self.cleared = data.get("cleared", [])  # [{"type", "source"}]: conditions gone, to tell the fleet
        self.active = data.get("active", [])    # [[type, source]]: raised, not cleared since
        self._m_reported = self._m_dropped = None

    def register(self, metrics, health):
        self._m_reported = metrics.counter("alarms_reported_total", "Alarms reported", ("severity",))
        self._m_dropped = metrics.counter("alarms_dropped_total", "Alarms dropped (buffer full)", ())
        metrics.gauge("alarms_pending", "Alarms waiting to be sent", read=lambda: len(self.pending))

    @property
    def http(self):
        if self._http is None:  # built the seed's way: a client of its own, on first use
            from iotlib.seed_defaults import http_client
            self._http = http_client(self.auth)
        return self._http

    def _now(self):
        if self.clock is not None:
            return self.clock.time()
        return time.time()

    def _save(self):
        if self.store is not None:
            self.store.write_json(self.name, {"alarms": self.pending, "dropped": self.dropped,
                                              "dropped_total": self.dropped_total, "cleared": self.cleared,
                                              "active": self.active})

    def _find(self, type_, source):
        for a in self.pending:
            if a["type"] == type_ and a["source"] == source:
                return a
        return None

    def _drop(self):
        self.dropped += 1
        self.dropped_total += 1
        if self._m_dropped is not None:
            self._m_dropped.inc()

    def report_alarm(self, alarm, source=None):
        """Record an alarm: {"type", "severity"?, "source"?, "message"?, "count"?}."""
        type_ = str(alarm["type"])[:64]
        source = str(source or alarm.get("source") or "device")[:64]
        severity = alarm.get("severity", "warning")
        if severity not in SEVERITIES:
            severity = "warning"
        count = int(alarm.get("count", 1))
        now = self._now()
        if self.clock is not None and not self.clock.trusted \
                and (type_, source) not in self._unsynced:
            self._unsynced.append((type_, source))
        self._uncleared(type_, source)  # back again: the fleet must not clear it
        key = [type_, source]
        if key not in self.active:
            if len(self.active) >= self.capacity:
                self.active.pop(0)  # the oldest: most likely a one-off event, never cleared
            self.active.append(key)
        if self._m_reported is not None:
            self._m_reported.inc(labels=(severity,))
        entry = self._find(type_, source)
        if entry is not None:
            entry["count"] += count
            entry["last_seen"] = now
            if _rank(severity) > _rank(entry["severity"]):
                entry["severity"] = severity
            if alarm.get("message"):
                entry["message"] = str(alarm["message"])[:256]
        else:
            entry = {"type": type_, "severity": severity, "source": source, "count": count,
                     "first_seen": now, "last_seen": now}
            if alarm.get("message"):
                entry["message"] = str(alarm["message"])[:256]
            if len(self.pending) >= self.capacity:
                # lowest severity first, then oldest: the victim is the minimum of (rank, first_seen)
                victim = min(self.pending, key=lambda a: (_rank(a["severity"]), a["first_seen"]))
                if _rank(victim["severity"]) > _rank(severity):
                    self._drop()
                    self._save()
                    return None
                self.pending.remove(victim)
                self._drop()
            self.pending.append(entry)
        self._save()
        if self.log is not None:
            self.log("alarm", type_, source, severity, entry["count"])
        if severity == "critical":
            self._wake.set()
        if self.autostart and not self._task.running():
            self._task.start(self.send_loop)  # used on its own: nobody else will send it
        return entry

    def on_clock_synced(self):
        """Clock.on_sync listener: alarms stamped off the unsynced clock move by the jump."""
        shift = self.clock.correction_s
        for type_, source in self._unsynced:
            entry = self._find(type_, source)
            if entry is not None:
                entry["first_seen"] += shift
                entry["last_seen"] += shift
        self._unsynced = []
        self._save()
        self._wake.set()

    def _uncleared(self, type_, source):
        for c in self.cleared:
            if c["type"] == type_ and c["source"] == source:
                self.cleared.remove(c)
                return

    def raise_condition(self, alarm, source=None):
        """A condition seen (again): reported as report_alarm() does, but only when it is not
        active already (one alarm per episode, however often it is seen). None when not."""
        key = [str(alarm["type"])[:64], str(source or alarm.get("source") or "device")[:64]]
        if key in self.active:
            return None
        return self.report_alarm(alarm, source)

    def clear_alarm(self, type_, source="device"):
        """The condition behind an alarm is gone: the fleet clears its alarm (at the next send).
        Only an active alarm is cleared, once; True when this call cleared it."""
        type_, source = str(type_)[:64], str(source)[:64]
        key = [type_, source]
        if key not in self.active:
            return False
        self.active.remove(key)
        self._uncleared(type_, source)
        if len(self.cleared) >= self.capacity:
            self.cleared.pop(0)
        self.cleared.append({"type": type_, "source": source})
        self._save()
        self._wake.set()
        return True

    async def flush(self):
        """Send what is pending, in batches; True when the buffer is empty afterwards.
        Nothing leaves before the clock is trusted: the fleet keeps the earliest first_seen
        it is told, and a 2021 one would stay. Not beside the sender (start(), or autostart
        after a report): both would send the same batch; call it on a manager you drive."""
        s = self.services
        url = (s.service("alarms") if s is not None else None) or self.url
        if url is None or (self.clock is not None and not self.clock.trusted):
            return False
        url += "/alarms"
        while self.pending or self.dropped or self.cleared:
            chunk = self.pending[:self.batch]
            # send a snapshot; alarms repeated while the request is in flight keep the difference
            snapshot = [dict(a) for a in chunk]
            dropped = self.dropped
            cleared = self.cleared[:self.batch]
            try:
                r = await self.http.request("POST", url, json={
                    "device_id": self.device_id, "alarms": snapshot, "dropped": dropped,
                    "cleared": cleared})
            except Exception as e:
                if self.log is not None:
                    self.log("alarms: send failed", e)
                return False
            if r.status != 200:
                if self.log is not None:
                    self.log("alarms: status", r.status)
                return False
            for sent in snapshot:
                live = self._find(sent["type"], sent["source"])
                if live is None:
                    continue
                if live["count"] > sent["count"]:   # repeated meanwhile: keep the rest
                    live["count"] -= sent["count"]
                    live["first_seen"] = sent["last_seen"]
                else:
                    self.pending.remove(live)
            self.dropped -= dropped
            for c in cleared:
                if c in self.cleared:  # not re-raised meanwhile
                    self.cleared.remove(c)
            self.sent += len(snapshot)
            self._save()
        return True

    async def send_loop(self):
        """Forever: send batches (start()'s task, or the caller's own: stop() ends it)."""
        if not self._task.start():
            return
        while True:
            if self.pending or self.dropped or self.cleared:
                await self.flush()
            try:
                await asyncio.wait_for_ms(self._wake.wait(), self.interval_ms)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    def flush_soon(self):
        self._wake.set()

    async def start(self):
        self.autostart = False  # managed from now on: start() and stop() decide
        self._task.start(self.send_loop)

    async def stop(self):
        self.autostart = False
        self._task.stop()

    # ---- exceptions escaping tasks --------------------------------------------------------

    async def guard(self, coro, source):
        """Await coro; an exception escaping it becomes a critical alarm (and is not re-raised)."""
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.report_alarm({"type": "task_crashed", "severity": "critical", "source": source,
                               "message": "%s: %s" % (type(e).__name__, e)})
            return None

    def install(self, loop=None):
        """Loop exception handler: any task dying with an exception raises an alarm."""
        loop = loop or asyncio.get_event_loop()

        def handler(loop, context):
            exc = context.get("exception")
            self.report_alarm({"type": "unhandled_exception", "severity": "critical",
                               "source": "asyncio",
                               "message": "%s: %s" % (type(exc).__name__, exc)})
            loop.default_exception_handler(loop, context)

        loop.set_exception_handler(handler)
