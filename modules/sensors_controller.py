# SensorsController: the sensor role. Samples configured fields and streams them to
# WebSocket clients.
#
#   GET /ws  (WebSocket; token in `Authorization: Bearer` or `?token=`; sensors:read)
#     client -> {"subscribe": ["temp", ...]} | {"unsubscribe": [...]} | {"fields": null}
#     server -> {"subscribed": [...], "fields": [...]}    reply to each request
#               {"field": "temp", "value": 21.5, "ts": 1767225600000}   one frame per sample
#               (ts: the device clock's wall time in ms since 1970, UTC)
#               {"error": "rate_limited", "detail": ..., "retry_after": 1}
#   GET /sensors  (REST; sensors:read) -> {"fields": {name: {"value", "ts"}}, "clients": n}
# Fields: {"source": "adc0".."adc3" | "temp" | "sim", "rate_hz", "threshold_high",
# "threshold_low"}. A threshold crossing raises one alarm (AlarmManager; source: the field)
# until the value is back inside the band (or crosses the other way), which clears it
# (AlarmManager.clear_alarm); an alarm still active from before a reboot is cleared by the
# first sample back in band. The stream's session (client limits, rate limit, close codes,
# keepalive: a ping every `ping_s` seconds, a client silent for `pong_timeout_s` closed with
# 1011) is iotlib.ws_stream's: slow clients lose their oldest frames (counted), never stall
# the sampler or the other clients. This role only samples, answers the subscription
# messages and publishes the readings. The state service hears the role's state every `report_s`
# seconds (and on a reload), never per sample: {"sensors": {"sampling", "fields":
# {name: {"value", "ts"}}, "out_of_band": {name: "high"|"low"}}}.
import asyncio
import json
import math
import time
from array import array

from iotlib.buildinfo import build_info
from iotlib.role_base import RoleController
from iotlib.task import BackgroundTask
from iotlib.ws_stream import Hub

ROLE = "sensors"
_VOLTS_PER_COUNT = 3.3 / 4096
_BURST = 16  # ADC samples averaged per reading
DEFAULT_FIELDS = {"sim": {"source": "sim", "rate_hz": 5}}


def field_table(fields):
    """Check a `sensors.fields` section with the role's schema (sensors_schema, the one the
    configuration is validated with); returns it with defaults, or raises ValueError."""
    if not isinstance(fields, dict) or not fields:
        raise ValueError("sensors.fields: must be a non-empty object")
    from iotlib.config_schema import role_schema
    from iotlib.schema import validate
    return validate(role_schema(ROLE).fields(), fields, "sensors.fields")


class SensorsController(RoleController):
    """The sensor role. Build it with its settings and optional collaborators, then
    `await controller.main()`.

    Settings: wifi_ssid, wifi_password, device_id, device_key, service_discovery_url,
    fields (the sensors.fields section), max_clients, queue_size (frames per client),
    client_rps / client_burst (messages a client may send), tenant, namespace, api_key,
    host, port, rate_limit, ws_sndbuf (socket send buffer for stream clients; the sim sets
    it small so a slow reader backs up as it does over lwIP on the device), ping_s
    (server ping interval, 0 = none; default 20) and pong_timeout_s (a client that has not
    answered a ping within it is closed; default 10, at most ping_s) and report_s (how often
    the latest readings go to the state service; default 300, 0 = only at start and reload:
    each report is one PUT and one small flash write of state.json).

    Collaborators (optional, None-checked where used): network, auth, config
    (on_config(changed, config) subscribed; the "sensors" and "rate_limit" sections),
    logger, audit (record(event, **fields)), alarms (AlarmManager.report_alarm and
    clear_alarm for threshold crossings), state (StateManager.report: the role's state),
    metrics, health, sampler (AdcSampler; built on first use by an adc/temp field). The
    Device starts and stops the managers (iotlib.lifecycle), then this controller's start().
    """

    CONFIG_SECTIONS = ("sensors", "rate_limit")

    def __init__(self, wifi_ssid=None, wifi_password=None, device_id=None, device_key=None,
                 service_discovery_url=None, fields=None, max_clients=4, queue_size=8,
                 client_rps=5, client_burst=10, ping_s=20, pong_timeout_s=10, tenant=None, namespace=None, api_key=None,
                 host="0.0.0.0", port=80, rate_limit=None, ws_sndbuf=None, auth=None,
                 config=None, logger=None, audit=None, alarms=None, state=None, metrics=None,
                 health=None, sampler=None, clock=None, denials=None, http=None, report_s=300):
        RoleController.__init__(
            self, wifi_ssid=wifi_ssid, wifi_password=wifi_password, device_id=device_id,
            device_key=device_key, service_discovery_url=service_discovery_url, tenant=tenant,
            namespace=namespace, api_key=api_key, host=host, port=port, rate_limit=rate_limit,
            auth=auth, config=config, logger=logger, audit=audit, state=state, alarms=alarms,
            metrics=metrics, health=health, clock=clock, denials=denials, http=http)
        self.sampler = sampler
        self.hub = Hub(max_clients, queue_size, client_rps, client_burst, ping_s,
                       pong_timeout_s, ws_sndbuf)
        if not report_s >= 0:
            raise ValueError("report_s: must be >= 0")
        self.report_ms = int(report_s * 1000)
        self._report_task = BackgroundTask()
        self._fields = field_table(fields or DEFAULT_FIELDS)
        self._latest = {}  # name -> (value, ts)
        self._alarmed = {}  # name -> "high" | "low" while outside the band
        self._tasks = []
        self._buf = array("H", bytes(2 * _BURST))  # one buffer for every ADC reading
        self.samples = 0
        self.threshold_alarms = 0
        m = self.server.metrics
        self.hub.add_metrics(m)
        m.gauge("sensor_samples_total", "Samples taken", read=lambda: self.samples)
        m.gauge("sensor_threshold_alarms_total", "Threshold crossings",
                read=lambda: self.threshold_alarms)
        self.server.health.add_check("sampling", lambda: (bool(self._tasks), "%d fields"
                                                          % len(self._tasks)))
        self._add_routes()

    def describe(self):
        return {"role": ROLE, "build": build_info(), "fields": list(self._fields)}

    # -- sampling ----------------------------------------------------------------------

    def read_field(self, name):
        """One reading of field `name` (volts for adc*, degrees C for temp)."""
        source = self._fields[name]["source"]
        if source == "sim":
            # a slow sine wave around 20: the same numbers on every run, no hardware
            return round(20 + 5 * math.sin(time.ticks_ms() / 1000), 3)
        if self.sampler is None:
            from iotlib.adc_sampler import AdcSampler
            self.sampler = AdcSampler()
        if source == "temp":
            return round(self.sampler.read_temperature_c(), 2)
        channel = ord(source[3]) - 48  # "adcN"
        _, stats = self.sampler.burst((channel,), self._buf)
        return round(stats[0][2] * _VOLTS_PER_COUNT, 4)

    def sample(self, name):
        """Take one reading of `name`, check its thresholds and publish it."""
        value = self.read_field(name)
        ts = self.clock.time_ms()  # wall time: ms since 1970, UTC
        self.samples += 1
        self._latest[name] = (value, ts)
        self._check_thresholds(name, value)
        if self.hub.subscribed(name):
            # one string per sample, shared by every subscribed client's queue
            self.hub.publish(name, '{"field": "%s", "value": %s, "ts": %d}' % (name, value, ts))
        return value

    def _check_thresholds(self, name, value):
        spec = self._fields[name]
        high = spec["threshold_high"]
        low = spec["threshold_low"]
        side = None
        if high is not None and value > high:
            side = "high"
        elif low is not None and value < low:
            side = "low"
        before = self._alarmed.get(name)
        if side == before:
            return
        if before is not None and self.alarms is not None:  # that crossing is over: its alarm clears
            self.alarms.clear_alarm("threshold_" + before, name)
        if side is None:
            self._alarmed.pop(name, None)
            return
        self._alarmed[name] = side
        self.threshold_alarms += 1
        if self.audit is not None:
            self.audit.record("sensor_threshold", field=name, side=side, value=value)
        if self.alarms is not None:
            self.alarms.report_alarm({"type": "threshold_" + side, "severity": "warning",
                                      "source": name, "field": name, "value": value,
                                      "message": "%s %s %s" % (value, ">" if side == "high"
                                                               else "<", spec["threshold_" + side])})

    def _resume_alarms(self):
        # threshold alarms still active from before a restart or reload: the next sample
        # in band clears them, as if the crossing had been seen
        if self.alarms is None:
            return
        for type_, source in list(self.alarms.active):
            if type_ in ("threshold_high", "threshold_low"):
                if source in self._fields:
                    self._alarmed[source] = type_[10:]
                else:  # a field that is gone: its condition ended with it
                    self.alarms.clear_alarm(type_, source)

    async def _sample_loop(self, name, period_ms):
        while True:
            try:
                self.sample(name)
            except Exception as exc:  # a failing source must not stop the others
                if self.logger is not None:
                    self.logger.log("ERROR", "sampling failed", {"field": name, "error": str(exc)})
            await asyncio.sleep_ms(period_ms)

    def start_sampling(self):
        self.stop_sampling()
        for name, spec in self._fields.items():
            period = max(1, int(1000 / spec["rate_hz"]))
            self._tasks.append(asyncio.create_task(self._sample_loop(name, period)))

    def stop_sampling(self):
        for t in self._tasks:
            t.cancel()
        self._tasks = []

    # -- the role's state, for the state service -----------------------------------

    def report_state(self):
        """The latest readings and sampling status to the state service (StateManager
        debounces and persists; it sends only what changed)."""
        if self.state is None:
            return
        fields = {}
        for name, (value, ts) in self._latest.items():
            fields[name] = {"value": value, "ts": ts}
        self.state.report({"sensors": {"sampling": bool(self._tasks), "fields": fields,
                                       "out_of_band": dict(self._alarmed)}})

    async def _report_loop(self):
        wait = min(1000, self.report_ms or 1000)  # the first once the fields have samples
        while True:
            await asyncio.sleep_ms(wait)
            self.report_state()
            if not self.report_ms:
                return
            wait = self.report_ms

    def start_reporting(self):
        if self.state is not None:
            self._report_task.start(self._report_loop)

    def stop_reporting(self):
        self._report_task.stop()

    def reconfigure(self, fields=None, max_clients=None):
        """New fields and/or client limit; ValueError keeps the running configuration."""
        table = self._fields if fields is None else field_table(fields)
        if max_clients is not None and not 1 <= max_clients <= 16:
            raise ValueError("sensors.max_clients: must be 1..16")
        self._fields = table
        self._alarmed = {}
        self._resume_alarms()  # still-active alarms: the next samples clear or keep them
        for name in list(self._latest):  # a removed field's last value is no longer news
            if name not in table:
                del self._latest[name]
        if max_clients is not None:
            self.hub.max_clients = max_clients
        if self._tasks:
            self.start_sampling()
            self.report_state()

    def veto_config(self, changed, config):
        """ConfigManager veto phase: the reason a "sensors" section is refused, or None."""
        section = config.get("sensors")
        if "sensors" in changed and section:
            try:
                field_table(section.get("fields"))
            except ValueError as exc:
                return str(exc)
        return None

    def on_config(self, changed, config):
        """ConfigManager subscriber: the "sensors" and "rate_limit" sections."""
        if "sensors" in changed and config.get("sensors"):
            section = config["sensors"]
            self.reconfigure(section.get("fields"), section.get("max_clients"))
        self._apply_rate_limit(changed, config)

    # -- the stream --------------------------------------------------------------------

    def _add_routes(self):
        api = self.server
        ctl = self

        @api.route("/sensors", ("GET",), "sensors:read")
        async def latest(request):
            out = {}
            for name, (value, ts) in ctl._latest.items():
                out[name] = {"value": value, "ts": ts}
            return {"fields": out, "clients": len(ctl.hub.clients)}

        @api.route("/ws", ("GET",), "sensors:read")
        async def stream(request):
            return await ctl.hub.serve(request, ctl._handle_message)

    def _handle_message(self, client, message):
        # a stream client's request: the reply frame (Hub.serve queues it)
        try:
            msg = json.loads(message)
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            return json.dumps({"error": "bad_request", "detail": "send a JSON object"})
        names = msg.get("subscribe")
        if names is None:
            names = msg.get("unsubscribe")
            add = False
        else:
            add = True
        if names is not None:
            if isinstance(names, str):
                names = [names]
            if not isinstance(names, list):
                return json.dumps({"error": "bad_request", "detail": "a list of field names"})
            for n in names:
                if n not in self._fields:
                    return json.dumps({"error": "not_found", "detail": "unknown field %s" % n})
            for n in names:
                if add:
                    client.fields.add(n)
                else:
                    client.fields.discard(n)
        elif "fields" not in msg:
            return json.dumps({"error": "bad_request",
                               "detail": 'expected "subscribe", "unsubscribe" or "fields"'})
        return json.dumps({"subscribed": sorted(client.fields), "fields": list(self._fields)})

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self):
        """The role's own work: sampling, the stream keepalive, state reports."""
        self._resume_alarms()
        self.start_sampling()
        self.hub.start_keepalive()
        self.start_reporting()

    def _halt(self):
        self.stop_sampling()
        self.hub.stop_keepalive()
        self.stop_reporting()
