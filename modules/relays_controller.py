# RelaysController: the relay role. A REST API over a bank of GPIO relays.
#
#   GET  /gpio                 -> {"relays": {"relay1": "LOW", ...}, "timers"?}  relays:read
#   GET  /gpio/<relay>         -> {"relay": "relay1", "state": "LOW", "timer"?} relays:read
#   POST /gpio/<relay>  {"state": "HIGH"|"LOW", "duration_s"?: n}               relays:write
#   POST /gpio          {"relays": {"relay1": "HIGH", "relay2": "LOW"}, "duration_s"?: n}
#                       (one atomic register write through RelayBank: all or nothing)
# "HIGH" means the relay is ON (energised), whatever its pin's polarity (active_low is
# applied by RelayBank). With duration_s (1..86400) the command is a timer: afterwards each
# relay it switched goes back to the state it had before (answers carry "timer"/"timers").
# Errors: 400 bad body, 401/403 auth, 404 unknown relay, 409 interlock, 429 rate limit,
# all as {"error": ..., "detail": ...}.
#
# Safety: every relay starts in its configured safe state (boot and after a watchdog
# reset alike, since both run this code: timers live in RAM and end with a reboot); a relay
# with max_on_s > 0 is switched off by the on-time guard task once it has been on that long;
# a configuration reload that names a pin outside the board's allowed mask is vetoed and the
# running bank stays. A relay's `schedule` (daily on/off windows, UTC) is applied by the
# schedule task once the clock is trusted (SNTP), never from the unsynced RTC's 2021 time.
import asyncio
import json
import time

from iotlib.api_server import error
from iotlib.buildinfo import build_info
from iotlib.role_base import RoleController
from iotlib.task import BackgroundTask

ROLE = "relays"
HIGH = "HIGH"
LOW = "LOW"
_GUARD_PERIOD_MS = 100
_SCHEDULE_PERIOD_MS = 1000  # schedules have one-second resolution
_MAX_DURATION_S = 86400
_SINGLE_KEYS = ("state", "duration_s")
_BATCH_KEYS = ("relays", "duration_s")


def _state_name(on):
    return HIGH if on else LOW


def _parse_state(value, path):
    if value == HIGH:
        return True
    if value == LOW:
        return False
    raise ValueError('%s must be "HIGH" or "LOW"' % path)


def relay_table(relay_pins=None, relays=None):
    """Normalise the relay settings: {name: {"pin", "active_low", "safe_state", "max_on_s"}},
    plus "schedule" ([(on_s, off_s), ...]) for a relay that has one.

    `relays` is the config section form; `relay_pins` ({name: pin}) the short form. Checked
    by the role's schema (relays_schema, the one the configuration is validated with);
    raises ValueError naming the bad field.
    """
    if relays is None:
        relays = {}
        for name, pin in (relay_pins or {}).items():
            relays[name] = {"pin": pin}
    if not isinstance(relays, dict) or not relays:
        raise ValueError("relays: must be a non-empty object")
    windows = {}
    for name, spec in relays.items():
        if isinstance(spec, dict) and spec.get("schedule") is not None:
            from iotlib.daily_windows import parse  # only where a relay has a schedule
            windows[name] = parse(spec["schedule"], "relays.%s.schedule" % name)
    from iotlib.config_schema import role_schema
    from iotlib.schema import validate
    relays = validate(role_schema(ROLE).sections()["relays"], relays, "relays")
    table = {}
    for name, spec in relays.items():
        table[name] = {"pin": spec["pin"], "active_low": spec["active_low"],
                       "safe_state": spec["safe_state"], "max_on_s": spec["max_on_s"]}
        if windows.get(name):
            table[name]["schedule"] = windows[name]
    return table


def _duration(body, allowed):
    """A command body's optional duration_s: 0 (no timer) or whole seconds 1..86400.
    ValueError for a bad one, or for a field that is not `allowed`."""
    for key in body:  # a misspelt "duration_s" must not make a timed command permanent
        if key not in allowed:
            raise ValueError('unknown field "%s" (the body takes %s)' % (key, ", ".join(allowed)))
    value = body.get("duration_s")
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) \
            or not 1 <= value <= _MAX_DURATION_S:
        raise ValueError("duration_s: must be whole seconds 1..%d" % _MAX_DURATION_S)
    return value



class RelaysController(RoleController):
    """The relay role. Build it with its settings and optional collaborators, then
    `await controller.main()`.

    Settings: wifi_ssid, wifi_password, device_id, device_key, service_discovery_url,
    relay_pins ({name: pin}) or relays (the config section form, with each relay's optional
    "schedule"), interlocks ([[a, b], ...]), tenant, namespace, api_key, host, port,
    rate_limit (config section).

    Collaborators (each optional, None-checked where used; the Device passes the real
    managers and starts and stops them itself, iotlib.lifecycle):
      auth      - AuthManager: authorize(token, permission); built from device_key,
                  tenant, namespace and api_key when not given.
      config    - ConfigManager: subscribed with veto_config (phase 1: returns the reason,
                  e.g. a pin outside the board mask, touching nothing) and on_config
                  (phase 2: applies "relays", "interlocks", "rate_limit"; ValueError vetoes).
      logger    - Logger: log(level, msg, fields).
      audit     - the audit trail: record(event, **fields) for every relay command
                  (applied or refused), every automatic switch-off and reconfiguration.
      state     - StateManager: reported relay states after every change
                  (report({"relays": {...}})); with restore_desired=True its desired
                  "relays" are applied when they arrive (on_desired(apply_desired)).
      alarms    - AlarmManager: "relay_max_on_time" alarms.
      clock     - the device's Clock: schedules run on its wall time once it is trusted.
      metrics   - Metrics, health - Health: passed to the ApiServer.
    """

    LISTENING = "relays api listening"
    CONFIG_SECTIONS = ("relays", "interlocks", "rate_limit")

    def __init__(self, wifi_ssid=None, wifi_password=None, device_id=None, device_key=None,
                 service_discovery_url=None, relay_pins=None, relays=None, interlocks=(),
                 tenant=None, namespace=None, api_key=None, host="0.0.0.0", port=80,
                 rate_limit=None, allowed_mask=None, auth=None, config=None, logger=None,
                 audit=None, state=None, alarms=None, metrics=None, health=None,
                 restore_desired=False, clock=None, denials=None, http=None):
        self.restore_desired = restore_desired
        RoleController.__init__(
            self, wifi_ssid=wifi_ssid, wifi_password=wifi_password, device_id=device_id,
            device_key=device_key, service_discovery_url=service_discovery_url, tenant=tenant,
            namespace=namespace, api_key=api_key, host=host, port=port, rate_limit=rate_limit,
            auth=auth, config=config, logger=logger, audit=audit, state=state, alarms=alarms,
            metrics=metrics, health=health, clock=clock, denials=denials, http=http)
        self._allowed_mask = allowed_mask
        # no relays given: the device waits for the fleet's configuration (no bank yet)
        self._table = relay_table(relay_pins, relays) if (relay_pins or relays) else {}
        self._interlocks = [tuple(p) for p in interlocks]
        self.bank = None
        self._on_since = {}  # name -> ticks_ms when switched on (relays with max_on_s)
        self._timers = {}    # name -> (ticks_ms deadline, state to go back to)
        self._levels = {}    # name -> the level its schedule last asked for
        self._guard_task = BackgroundTask()
        self._schedule_task = None  # a BackgroundTask once a relay has a schedule
        self.commands = 0
        self.auto_off = 0
        self._add_routes()
        m = self.server.metrics
        m.gauge("relay_commands_total", "Relay commands applied", read=lambda: self.commands)
        m.gauge("relay_auto_off_total", "Relays switched off by max on-time",
                read=lambda: self.auto_off)
        m.gauge("relay_on", "1 while the relay is ON", ("relay",))
        self._on_gauge = m.get("relay_on")
        self.server.health.add_check("relays", lambda: (self.bank is not None, "bank ready"
                                                        if self.bank else "no bank"))

    def describe(self):
        return {"role": ROLE, "build": build_info(), "relays": list(self._table)}

    # -- the relay bank ---------------------------------------------------------------

    def _new_bank(self, table, interlocks):
        from iotlib import relay_bank
        pins = {}
        low = []
        for name, spec in table.items():
            pins[name] = spec["pin"]
            if spec["active_low"]:
                low.append(name)
        if self._allowed_mask is None:
            return relay_bank.RelayBank(pins, active_low=low, interlocks=interlocks)
        return relay_bank.RelayBank(pins, active_low=low, interlocks=interlocks,
                                    allowed_mask=self._allowed_mask)

    def apply_safe_states(self):
        """Drive every relay to its configured safe state (one write)."""
        if self.bank is None:
            return
        safe = {}
        for name, spec in self._table.items():
            safe[name] = spec["safe_state"] == HIGH
        self.bank.write(safe)
        self._track(safe)

    def setup_relays(self):
        """Build the bank from the current table (all OFF) and apply the safe states."""
        self._check_wiring(self._table, self._interlocks)
        if self._table:
            self.bank = self._new_bank(self._table, self._interlocks)
            self.apply_safe_states()

    def reconfigure(self, table=None, interlocks=None):
        """Swap in a new relay table and/or interlocks; ValueError leaves the old bank."""
        table = self._table if table is None else table
        interlocks = self._interlocks if interlocks is None else [tuple(p) for p in interlocks]
        self._check_wiring(table, interlocks)  # veto before any pin is touched
        old = self.bank
        if old is not None:
            # release the old pins first: the new bank claims its own (possibly the same) pins
            old.all_off()
        try:
            self.bank = self._new_bank(table, interlocks)
        except Exception:
            if old is not None:
                self.bank = old
                self.apply_safe_states()
            raise
        self._table = table
        self._interlocks = interlocks
        self._on_since = {}
        self._timers = {}
        self._levels = {}  # the new schedules are applied afresh
        self.apply_safe_states()
        self._audit("relays_reconfigured", relays=list(table))
        if self._guard_task.running() or self._schedule_task is not None:
            self.start_schedules()  # running: the schedule task follows the new table

    def _check_wiring(self, table, interlocks):
        """What the configuration's schema cannot know: interlocks name relays of this table
        (the table may be the one from construction) and each pin is allowed on this board,
        once. ValueError names the field; nothing is touched."""
        for pair in interlocks:
            for name in pair:
                if name not in table:
                    raise ValueError("interlocks: unknown relay %s" % name)
        from iotlib import relay_bank
        mask = relay_bank.DEFAULT_ALLOWED_MASK if self._allowed_mask is None \
            else self._allowed_mask
        used = 0
        for name, spec in table.items():
            bit = 1 << spec["pin"]
            if not mask & bit:
                raise ValueError("relays.%s.pin: GPIO %d is not allowed on this board"
                                 % (name, spec["pin"]))
            if used & bit:
                raise ValueError("relays.%s.pin: GPIO %d is used twice" % (name, spec["pin"]))
            used |= bit

    def read(self):
        """{name: "HIGH"|"LOW"} from the output register ({} before any relay is configured)."""
        if self.bank is None:
            return {}
        states = self.bank.read()
        out = {}
        for name, on in states.items():
            out[name] = _state_name(on)
        return out

    def switch(self, changes, source=None, duration_s=0):
        """Apply {name: bool} atomically; ValueError/InterlockError change nothing.

        A command ends the timers of the relays it names; with duration_s it starts new
        ones: each relay goes back to its state from before (an earlier timer's, when one
        ran) after that many seconds. Applied and refused commands both go to the audit
        trail."""
        revert = None
        if duration_s:  # each relay's way back: its state now, or an earlier timer's
            states = self.bank.read()
            revert = {}
            for name in changes:
                timer = self._timers.get(name)
                revert[name] = states[name] if timer is None else timer[1]
        try:
            self.bank.write(changes)
        except ValueError as exc:
            self._audit("relay_command_refused", source=source, reason=str(exc))
            raise
        self.commands += 1
        self._track(changes)
        named = dict((k, _state_name(v)) for k, v in changes.items())
        if duration_s:
            deadline = time.ticks_add(time.ticks_ms(), duration_s * 1000)
            for name, on in changes.items():
                if revert[name] != on:  # nothing to undo otherwise
                    self._timers[name] = (deadline, revert[name])
            self._audit("relay_command", source=source, changes=named, duration_s=duration_s)
        else:
            self._audit("relay_command", source=source, changes=named)
        if self.state is not None:
            self.state.report({"relays": self.read()})

    def switch_what_can(self, changes, source):
        """Switch `changes` at once; if an interlock refuses that (a newer command turned a
        partner on), each relay alone, OFF first, so what can switch does. Refusals are
        audited by switch()."""
        try:
            self.switch(changes, source)
            return
        except ValueError:
            pass
        for want in (False, True):
            for name, on in changes.items():
                if on is want:
                    try:
                        self.switch({name: on}, source)
                    except ValueError:
                        pass

    def apply_desired(self, desired):
        """StateManager desired-state handler: {"relays": {name: "HIGH"|"LOW"}} restored in
        one write (unknown relays or an interlock raise; the state manager alarms on it)."""
        relays = (desired or {}).get("relays")
        if not isinstance(relays, dict) or not relays:
            return
        changes = {}
        for name, value in relays.items():
            if name not in self._table:
                raise ValueError("desired relays.%s: unknown relay" % name)
            changes[name] = _parse_state(value, "desired relays.%s" % name)
        self.switch(changes, "desired_state")

    def _track(self, changes):
        now = time.ticks_ms()
        for name, on in changes.items():
            self._on_gauge.set(1 if on else 0, labels=(name,))
            if self._timers:
                self._timers.pop(name, None)  # whatever switched it, its timer is over
            if on and self._table[name]["max_on_s"]:
                if name not in self._on_since:
                    self._on_since[name] = now
            else:
                self._on_since.pop(name, None)

    def _audit(self, action, **fields):
        if self.audit is not None:
            self.audit.record(action, **fields)

    # -- max on-time guard --------------------------------------------------------------

    def check_on_time(self, now=None):
        """Switch off every relay past its max_on_s; return their names."""
        now = time.ticks_ms() if now is None else now
        expired = None
        for name, since in self._on_since.items():
            if time.ticks_diff(now, since) >= self._table[name]["max_on_s"] * 1000:
                if expired is None:
                    expired = {}
                expired[name] = False
        if expired is None:
            return ()
        self.bank.write(expired)
        self.auto_off += len(expired)
        self._track(expired)
        self._audit("relay_max_on_time", relays=list(expired))
        if self.alarms is not None:
            for name in expired:
                self.alarms.report_alarm({"type": "relay_max_on_time", "severity": "warning",
                                          "relay": name})
        if self.state is not None:
            self.state.report({"relays": self.read()})
        return list(expired)

    def check_timers(self, now=None):
        """Put every relay whose timer is due back to its earlier state; their names."""
        now = time.ticks_ms() if now is None else now
        due = None
        for name, (deadline, revert) in self._timers.items():
            if time.ticks_diff(now, deadline) >= 0:
                if due is None:
                    due = {}
                due[name] = revert
        if due is None:
            return ()
        for name in due:
            del self._timers[name]
        self.switch_what_can(due, "timer")
        return list(due)

    def timer(self, name):
        """{"revert_to", "remaining_s"} of the relay's running timer, or None."""
        timer = self._timers.get(name)
        if timer is None:
            return None
        left = max(0, time.ticks_diff(timer[0], time.ticks_ms()))
        return {"revert_to": _state_name(timer[1]), "remaining_s": (left + 999) // 1000}

    async def _guard(self):
        while True:
            await asyncio.sleep_ms(_GUARD_PERIOD_MS)
            if self._on_since:
                self.check_on_time()
            if self._timers:
                self.check_timers()

    def start_guard(self):
        self._guard_task.start(self._guard)

    def stop_guard(self):
        self._guard_task.stop()

    # -- schedules ----------------------------------------------------------------------

    def check_schedules(self, now_s=None):
        """Switch each scheduled relay whose schedule asks for another level than at the last
        check (the first check after start or a reload applies it: a relay inside its ON
        window at boot catches up); a relay already at that level is left alone, and a
        command between two edges stands until the next. Returns the switched names."""
        from iotlib.daily_windows import DAY_S, is_on
        day_s = (self.clock.time() if now_s is None else now_s) % DAY_S
        changes = states = None
        for name, spec in self._table.items():
            windows = spec.get("schedule")
            if windows is None:
                continue
            on = is_on(windows, day_s)
            if self._levels.get(name) is on:
                continue
            self._levels[name] = on
            if states is None:
                states = self.bank.read()
            if states[name] != on:
                if changes is None:
                    changes = {}
                changes[name] = on
        if changes is None:
            return ()
        self.switch_what_can(changes, "schedule")
        return list(changes)

    async def _scheduler(self):
        while True:
            # the unsynced RTC reads 2021-01-01 (or a floor): no schedule runs on that
            if self.clock.trusted:
                self.check_schedules()
            await asyncio.sleep_ms(_SCHEDULE_PERIOD_MS)

    def start_schedules(self):
        """Run the schedule task while any relay has a schedule (stopped otherwise)."""
        for spec in self._table.values():
            if "schedule" in spec:
                if self._schedule_task is None:
                    self._schedule_task = BackgroundTask()
                self._schedule_task.start(self._scheduler)
                return
        self.stop_schedules()

    def stop_schedules(self):
        if self._schedule_task is not None:
            self._schedule_task.stop()
            self._schedule_task = None

    # -- configuration hot reload ------------------------------------------------------

    def _planned(self, changed, config):
        """(table, interlocks) a config change would install; ValueError names the field."""
        table = self._table
        if "relays" in changed and config.get("relays"):
            table = relay_table(relays=config["relays"])
        interlocks = self._interlocks
        if "interlocks" in changed or "relays" in changed:
            interlocks = [tuple(p) for p in (config.get("interlocks") or ())]
        self._check_wiring(table, interlocks)
        return table, interlocks

    def veto_config(self, changed, config):
        """ConfigManager veto phase: a reason string refuses the change (None accepts);
        nothing is touched here."""
        try:
            self._planned(changed, config)
        except ValueError as exc:
            return str(exc)
        return None

    def on_config(self, changed, config):
        """ConfigManager subscriber: apply the changed sections or raise ValueError (veto).

        Relays and interlocks change together (one new bank); an empty "relays" section
        keeps the relays given at construction.
        """
        if "relays" in changed or "interlocks" in changed:
            table, interlocks = self._planned(changed, config)
            self.reconfigure(table=table, interlocks=interlocks)
        self._apply_rate_limit(changed, config)

    # -- REST API ------------------------------------------------------------------------

    def _add_routes(self):
        api = self.server
        ctl = self

        @api.route("/gpio", ("GET",), "relays:read")
        async def list_relays(request):
            return ctl._answer(None)

        @api.route("/gpio/<relay>", ("GET",), "relays:read")
        async def get_relay(request, relay):
            if relay not in ctl._table:
                return error(404, "unknown relay %s" % relay)
            return ctl._answer(relay)

        @api.route("/gpio/<relay>", ("POST",), "relays:write")
        async def set_relay(request, relay):
            if relay not in ctl._table:
                return error(404, "unknown relay %s" % relay)
            body = _json_body(request)
            if not isinstance(body, dict) or "state" not in body:
                return error(400, 'body must be {"state": "HIGH"|"LOW", "duration_s"?: seconds}')
            try:
                duration = _duration(body, _SINGLE_KEYS)
                on = _parse_state(body["state"], "state")
            except ValueError as exc:
                return error(400, str(exc))
            return ctl._apply(request, {relay: on}, relay, duration)

        @api.route("/gpio", ("POST",), "relays:write")
        async def set_relays(request):
            body = _json_body(request)
            relays = body.get("relays") if isinstance(body, dict) else None
            if not isinstance(relays, dict) or not relays:
                return error(400, 'body must be {"relays": {"<relay>": "HIGH"|"LOW", ...},'
                                  ' "duration_s"?: seconds}')
            try:
                duration = _duration(body, _BATCH_KEYS)
            except ValueError as exc:
                return error(400, str(exc))
            changes = {}
            for name, value in relays.items():
                if name not in ctl._table:
                    return error(404, "unknown relay %s" % name)
                try:
                    changes[name] = _parse_state(value, "relays.%s" % name)
                except ValueError as exc:
                    return error(400, str(exc))
            return ctl._apply(request, changes, None, duration)

    def _apply(self, request, changes, single, duration_s):
        claims = getattr(request.g, "claims", None)
        source = claims.get("sub") if isinstance(claims, dict) else None
        try:
            self.switch(changes, source, duration_s)
        except ValueError as exc:  # InterlockError is a ValueError; nothing changed
            return error(409, str(exc))
        return self._answer(single)

    def _answer(self, single):
        """One relay {"relay", "state", "timer"?} or all {"relays", "timers"?}."""
        states = self.read()
        if single is not None:
            out = {"relay": single, "state": states[single]}
            timer = self.timer(single)
            if timer is not None:
                out["timer"] = timer
            return out
        out = {"relays": states}
        if self._timers:
            out["timers"] = dict((name, self.timer(name)) for name in self._timers)
        return out

    # -- lifecycle ---------------------------------------------------------------------

    def safe_start(self):
        """Relays to their safe state, before anything else starts (the Device runs it
        first; start() when nobody did). The state the pins are really in is reported before
        any desired state can be applied: the one kept from before a restart no longer holds."""
        self.setup_relays()
        if self.state is not None:
            self.state.report({"relays": self.read()})

    async def start(self):
        """The role's own work: the max on-time guard, the schedules, desired states."""
        if self.bank is None:
            self.safe_start()
        self.start_guard()
        self.start_schedules()
        if self.state is not None and self.restore_desired:
            self.state.on_desired(self.apply_desired)

    def _halt(self):
        self.stop_guard()
        self.stop_schedules()

    async def stop(self):
        await RoleController.stop(self)
        if self.bank is not None:
            self.apply_safe_states()


def _json_body(request):
    try:
        return json.loads(request.body)
    except (ValueError, TypeError):
        return None
