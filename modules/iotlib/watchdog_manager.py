# WatchdogManager: heartbeats to service discovery and the hardware watchdog.
#
# - Heartbeats (uptime, free heap, health, boot count, and what describe() adds: firmware
#   version, image kind, safe mode, OTA state) every heartbeat_s; the reply may order
#   "reboot" or "refresh_token", or an action registered with on_action(name, fn) (device.py:
#   "check_update" -> OTAUpdateManager.check_now()). Missed heartbeats are counted;
#   escalation follows the count: alarm_after -> an alarm; every miss after that ->
#   reconnect (network) and re-register; max_missed -> reset. The heartbeat_missed alarm is
#   an episode: cleared by the next heartbeat discovery answers.
# - The hardware watchdog (the hal's wdt(): machine.WDT, at most 8388 ms on the RP2040) is fed
#   by a small task, and only while every watched loop has checked in recently: a hung event
#   loop cannot run the feeder, and a stuck loop stops checking in, so either way the device
#   resets. Resets go through the hal's reset(cause), the cause noted in the boot counter's
#   file first (on the unix simulation the process ends: iotlib.hal.unix).
import asyncio
import gc
import time

from iotlib.boot_counter import CAUSE_ESCALATION, CAUSE_WDT
from iotlib.task import BackgroundTask

STARTING_S = 5  # heartbeat cadence while no heartbeat has said "ready" yet...
STARTING_FOR_S = 120  # ...during the first two minutes of uptime


def _free_heap():
    gc.collect()
    return gc.mem_free()


class WatchdogManager:
    def __init__(self, discovery_url, auth, device_id, registration=None, http=None, role=None,
                 firmware_version=None, address="0.0.0.0", port=80, capabilities=(),
                 heartbeat_s=None, max_missed=5, alarm_after=None, wdt=None, wdt_timeout_ms=8000,
                 feed_ms=1000, use_wdt=True, reset=None, boot=None, alarms=None, health=None,
                 network=None, clock=None, log=None, describe=None, hal=None):
        if not isinstance(device_id, str) or registration is None \
                and not isinstance(discovery_url, str):
            raise TypeError("WatchdogManager(discovery_url, auth, device_id): discovery_url and "
                            "device_id must be strings, not %s and %s"
                            % (type(discovery_url).__name__, type(device_id).__name__))
        if registration is None:
            from iotlib.registration import Registration
            registration = Registration(discovery_url, auth, device_id, role=role,
                                        firmware_version=firmware_version, address=address,
                                        port=port, capabilities=capabilities, http=http,
                                        clock=clock)
        self.registration = registration
        self.auth = auth
        self.device_id = device_id
        self.http = http or registration.http
        self.heartbeat_s = heartbeat_s          # None: what discovery says, else 30
        self.max_missed = max_missed
        self.alarm_after = alarm_after or max(1, max_missed // 2)
        self.wdt = wdt
        self.wdt_timeout_ms = wdt_timeout_ms  # the hal caps it at the chip's maximum
        self.feed_ms = feed_ms
        self.use_wdt = use_wdt
        self.reset = reset  # a stand-in for the hal's reset: called after the cause is noted
        if hal is None:  # built the seed's way
            from iotlib.seed_defaults import hal as load
            hal = load()
        self.hal = hal
        self.boot = boot
        self.alarms = alarms
        self.health = health
        self.network = network
        self.log = log
        self.describe = describe  # callable -> dict of what the inventory shows (version, image, OTA)
        self.missed = 0
        self.heartbeats = 0
        self.ready_sent = False  # whether a heartbeat has told the fleet the device is ready
        self.last_actions = []
        self._watched = {}      # name -> [max_silence_ms, last_checkin_ticks]
        self._handlers = {}     # action name -> fn() for actions other managers own
        self._started_ms = time.ticks_ms()
        self._loop_task = BackgroundTask()
        self._feed_task = BackgroundTask()
        self._hb_missed = self._hb_sent = None

    def register(self, metrics, health):
        self._hb_sent = metrics.counter("heartbeats_total", "Heartbeats answered", ())
        self._hb_missed = metrics.counter("heartbeats_missed_total", "Heartbeats missed", ())
        health.add_check("watchdog_loops", self._loops_ok, required=False, live=True)

    # ---- loop liveness --------------------------------------------------------------------

    def watch(self, name, max_silence_ms):
        """Register a loop that must checkin(name) at least every max_silence_ms."""
        self._watched[name] = [max_silence_ms, time.ticks_ms()]

    def unwatch(self, name):
        self._watched.pop(name, None)

    def checkin(self, name):
        entry = self._watched.get(name)
        if entry is not None:
            entry[1] = time.ticks_ms()

    def stalled(self):
        now = time.ticks_ms()
        return [n for n, (limit, last) in self._watched.items() if time.ticks_diff(now, last) > limit]

    def _loops_ok(self):
        bad = self.stalled()
        return (not bad, "stalled: " + ",".join(bad) if bad else "ok")

    async def _feed_loop(self):
        if self.wdt is None:
            note = (lambda: self.boot.note_reset(CAUSE_WDT)) if self.boot is not None else None
            self.wdt = self.hal.wdt(self.wdt_timeout_ms, note)
        while True:
            if not self.stalled():
                self.wdt.feed()
            await asyncio.sleep_ms(self.feed_ms)

    # ---- heartbeats -----------------------------------------------------------------------

    def on_action(self, name, fn):
        """Run fn() when a heartbeat reply orders `name`. A coroutine it returns runs as its
        own task: a long job (an OTA download) must not hold up heartbeats or the WDT."""
        self._handlers[name] = fn

    def _say(self, *args):
        if self.log is not None:
            self.log(*args)

    def uptime_s(self):
        return time.ticks_diff(time.ticks_ms(), self._started_ms) // 1000

    def _health_report(self):
        if self.health is None:
            return {}
        try:
            ok, checks = self.health.readyz()
        except Exception:
            ok, checks = self.health.livez()
        return {"ok": ok, "checks": {k: v["ok"] for k, v in checks.items()}}

    async def heartbeat_once(self):
        """One heartbeat; True when discovery answered. Runs the actions it orders."""
        try:
            await self.registration.ensure()
            health = self._health_report()
            body = {"uptime_s": self.uptime_s(), "free_heap": _free_heap(), "health": health}
            if self.boot is not None:
                body["boot_count"] = self.boot.boot_count
            if self.describe is not None:
                body.update(self.describe())
            r = await self.http.request("POST", "%s/devices/%s/heartbeat"
                                        % (self.registration.url, self.device_id), json=body)
            if r.status == 401:  # token expired or revoked: register again next time
                self.registration.expires_at = 0
                raise OSError("heartbeat refused (401)")
            if r.status != 200:
                raise OSError("heartbeat status %d" % r.status)
            actions = r.json().get("actions") or []
        except Exception as e:  # unreachable, refused, timeout: all a missed heartbeat
            self._missed(e)
            return False
        if self.alarms is not None and (self.missed or not self.heartbeats):
            # the episode ends (also one still open from before a reset: the first answer)
            self.alarms.clear_alarm("heartbeat_missed", "watchdog")
        self.missed = 0
        self.heartbeats += 1
        self.ready_sent = self.ready_sent or bool(health.get("ok"))
        if self._hb_sent is not None:
            self._hb_sent.inc()
        self.last_actions = actions
        for action in actions:
            await self._act(action)
        return True

    async def _act(self, action):
        self._say("watchdog: action", action)
        if action == "refresh_token":
            self.registration.expires_at = 0
            try:
                await self.registration.register()
            except Exception as e:
                self._say("watchdog: refresh failed", e)
        elif action == "reboot":
            self._reset("requested")
        elif action in self._handlers:
            try:
                r = self._handlers[action]()
                if hasattr(r, "send"):
                    asyncio.create_task(r)
            except Exception as e:
                self._say("watchdog: action failed", action, e)
        else:
            self._say("watchdog: no handler for", action)

    def _missed(self, error):
        self.missed += 1
        if self._hb_missed is not None:
            self._hb_missed.inc()
        self._say("watchdog: missed heartbeat", self.missed, error)
        if self.missed >= self.max_missed:
            if self.alarms is not None:
                self.alarms.report_alarm({"type": "watchdog_reset", "severity": "critical",
                                          "source": "watchdog",
                                          "message": "%d heartbeats missed" % self.missed})
            self._reset(CAUSE_ESCALATION)
            return
        if self.missed == self.alarm_after and self.alarms is not None:
            self.alarms.raise_condition({"type": "heartbeat_missed", "severity": "warning",
                                      "source": "watchdog", "message": str(error)[:200]})
        if self.missed >= self.alarm_after:
            self._reconnect()

    def _reconnect(self):
        self.registration.expires_at = 0  # register again once discovery answers
        net = self.network
        if net is not None:
            for name in ("reconnect", "connect"):
                fn = getattr(net, name, None)
                if fn is not None:
                    try:
                        r = fn()
                        if hasattr(r, "send"):  # a coroutine: run it in the background
                            asyncio.create_task(r)
                    except Exception as e:
                        self._say("watchdog: reconnect failed", e)
                    break

    def _reset(self, cause):
        self._say("watchdog: reset,", cause)
        if self.reset is None:
            self.hal.reset(cause, self.boot)
        else:
            if self.boot is not None:
                self.boot.note_reset(cause)
            self.reset()

    def interval_s(self):
        return self.heartbeat_s or self.registration.heartbeat_s or 30

    def next_delay_s(self):
        """The first heartbeats go out while the device is still starting (no config yet, the
        server not listening): until one has reported it ready, the next follows within
        STARTING_S, for the first STARTING_FOR_S of uptime, so the fleet does not show a
        healthy device as failing for a whole interval."""
        interval = self.interval_s()
        if not self.ready_sent and self.uptime_s() < STARTING_FOR_S:
            return min(interval, STARTING_S)
        return interval

    def start_feeder(self):
        """Start feeding the hardware watchdog (watchdog_loop() does it itself when use_wdt)."""
        self._feed_task.start(self._feed_loop)

    async def watchdog_loop(self):
        """Heartbeat forever (the call shape users write); feeds the WDT from its own task.
        start()'s task, or the caller's own: stop() ends it either way."""
        if not self._loop_task.start():
            return
        if self.use_wdt:
            self.start_feeder()
        interval = self.interval_s()
        self.watch("heartbeat", (interval * 2 + 30) * 1000)
        while True:
            await self.heartbeat_once()
            self.checkin("heartbeat")
            await asyncio.sleep_ms(int(self.next_delay_s() * 1000))

    async def start(self):
        self._loop_task.start(self.watchdog_loop)

    async def stop(self):
        # the hardware WDT cannot be disabled once started on RP2040: stop only when resetting
        # or on unix; the feeder goes last
        self._loop_task.stop()
        self._feed_task.stop()
        self.unwatch("heartbeat")
        if self.wdt is not None and hasattr(self.wdt, "stop"):
            self.wdt.stop()
