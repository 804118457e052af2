# The device assembled from its provisioning (device.json): every manager built once with
# its collaborators, the role's controller handed what it uses, one start/stop order.
#
#   early = boot_early(settings, hal.load())  # Clock, BootCounter, BundleStore.boot(), image stage
#   device = Device(settings, RelaysController, early)
#   await device.main()               # serve until stop()
#
# One lifecycle (iotlib.lifecycle): Device.managers is the one ordered start list, each
# manager registered, started in order and stopped in reverse; the controller goes last.
# Boot order: relays to their safe state (controller.safe_start()), network monitor, auth,
# logger, denial log; FleetLink registers with backoff (the API serves meanwhile, from the
# last-known-good config) and then heartbeats; the config poller (fetching once
# registered); Components: the optional managers, following `enabled_components` (alarms,
# state, timesync, ota; all on by default); then the role's own work and serving.
# The fleet-facing managers (config, state, alarms, OTA) hold the Registration and ask it
# for their service's URL at each call; registration itself only wakes them.
# Time: one iotlib.clock.Clock (built in boot_early, over the chip's RTC, with its floor on
# flash) goes to every manager. TimeSyncManager starts with the managers, tries SNTP at once
# and again as soon as registration names the fleet's NTP servers; until it answers the API
# refuses tokens with 503 + Retry-After and readiness (`time_synced`) is false.
# Safe mode (the loader's boot mode "safe", controller iotlib.safe_mode.SafeModeController):
# network, health, registration/heartbeats, alarms and OTA only, no config poller, no state,
# and a critical `safe_mode` alarm.
import asyncio
import os

from iotlib.task import BackgroundTask

# device.json keys the device uses itself; the rest go to the role's controller
DEVICE_KEYS = ("role", "rbac", "wifi_ssid", "wifi_password", "config_poll_s", "use_wdt",
               "ntp_servers", "mask_fields", "max_missed", "state_poll_s",
               "max_token_lifetime_s", "ntp_retry_s", "http_client_max_body", "fleet_ca_file",
               "fleet_client_cert_file", "fleet_client_key_file", "fleet_tls_insecure_skip_verify",
               "clock_drift_alarm_s")


def discovery_base(url):
    """".../api" from ".../api" or ".../api/devices" (both forms appear in provisioning)."""
    url = url.rstrip("/")
    return url[:-8] if url.endswith("/devices") else url


def boot_early(settings, hal, store_root=".", ota_root="ota"):
    """What must run before any application import: start the clock, count the boot, pick
    the OTA bundle (it goes first on sys.path), open the image stage (its boot mode says
    normal, trial or safe). hal: iotlib.hal.load(), the hardware every manager is handed.
    Returns (store, boot counter, bundle store, image stage, clock, hal)."""
    from iotlib.storage import Storage
    from iotlib.clock import Clock
    from iotlib.boot_counter import BootCounter
    from iotlib.ota.bundle import BundleStore

    store = Storage(store_root)
    clock = Clock(hal.rtc(), store=store)  # the chip's RTC; its lower bound from flash
    boot = BootCounter(store, clock=clock, hal=hal)
    boot.record_boot()
    clock.on_sync(boot.stamp_synced)
    bundles = BundleStore(ota_root)
    bundles.boot()
    return store, boot, bundles, hal.staging(ota_root), clock, hal


def _jitter(limit):
    return int.from_bytes(os.urandom(2), "little") % (limit + 1) if limit > 0 else 0


class AfterRegistration:
    """start() returns at once; the manager starts when the device has registered (its
    service URLs come from discovery). stop() stops either; register() is the manager's."""

    def __init__(self, manager, registered, now=False):
        self.manager = manager
        self.registered = registered
        self.now = now  # e.g. an OTA trial: its deadline runs whatever the fleet does
        self._task = BackgroundTask()

    async def _run(self):
        if not self.now:
            await self.registered.wait()
        await self.manager.start()

    async def start(self):
        self._task.start(self._run)

    async def stop(self):
        self._task.stop()
        await self.manager.stop()

    def register(self, metrics, health):
        self.manager.register(metrics, health)


class FleetLink:
    """Register with capped exponential backoff (plus jitter) until discovery answers,
    then hand over to the WatchdogManager's heartbeats. The hardware watchdog is fed from
    the start, so a hung loop resets the device even before registration."""

    def __init__(self, registration, watchdog, backoff_min_ms=1000, backoff_max_ms=60000,
                 log=None, enabled=True, refused=None):
        self.registration = registration
        self.enabled = enabled  # False: a standalone device (no discovery URL), WDT only
        self.refused = refused  # why the link must not start (e.g. an unverifiable server)
        self.watchdog = watchdog
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.log = log
        self.attempts = 0
        self.last_error = None
        self._task = BackgroundTask()

    async def _run(self):
        delay = self.backoff_min_ms
        while True:
            self.attempts += 1
            try:
                await self.registration.register()
                break
            except Exception as e:  # unreachable, refused, timeout: retry later
                self.last_error = str(e)
                if self.log is not None:
                    self.log("WARNING", "registration failed", attempt=self.attempts,
                             error=self.last_error, retry_ms=delay)
            await asyncio.sleep_ms(delay + _jitter(delay // 2))
            delay = min(delay * 2, self.backoff_max_ms)
        self.last_error = None
        await self.watchdog.start()

    async def start(self):
        if self.watchdog.use_wdt:
            self.watchdog.start_feeder()
        if self.enabled and self.refused:
            self.last_error = "fleet link refused: " + self.refused
            if self.log is not None:
                self.log("ERROR", "fleet link refused", reason=self.refused)
        elif self.enabled:
            self._task.start(self._run)

    async def stop(self):
        self._task.stop()
        await self.watchdog.stop()

    def register(self, metrics, health):
        self.watchdog.register(metrics, health)
        metrics.counter("registration_attempts_total", "Registration attempts since boot",
                        read=lambda: self.attempts)
        if self.enabled:
            reg = self.registration
            health.add_check("registered", lambda: (reg.registered, "registered"
                                                    if reg.registered
                                                    else self.last_error or "not yet"))


class _FleetGate:
    """What the config poller waits on: the network up and the device registered."""

    def __init__(self, network, registered):
        self.network = network
        self.registered = registered

    async def wait_up(self):
        await self.network.wait_up()
        await self.registered.wait()


def _timesync(settings, clock):
    """TimeSyncManager, or None on an image without a network stack (no socket module)."""
    try:
        from iotlib.timesync_manager import TimeSyncManager
    except ImportError:
        return None
    return TimeSyncManager(settings.get("ntp_servers") or (), clock=clock,
                           retry_s=settings.get("ntp_retry_s", 30),
                           drift_alarm_s=settings.get("clock_drift_alarm_s", 2))


class Device:
    """Every manager of one device, built from device.json; `controller` is the role."""

    def __init__(self, settings, controller_class, early, version="0.0.0"):
        from iotlib.metrics import Metrics, register_runtime
        from iotlib.health import Health
        from iotlib.logger import Logger
        from iotlib.audit import Audit
        from iotlib.denial_log import DenialLog
        from iotlib.auth_manager import AuthManager
        from iotlib.http_client import HttpClient
        from iotlib.fleet_tls import fleet_tls_options
        from iotlib.network_manager import NetworkManager

        self.settings = settings
        store, self.boot, self.bundles, self.image, self.clock, self.hal = early
        clock = self.clock
        self.safe_mode = getattr(controller_class, "SAFE_MODE", False)
        self._image_kind = None  # build_info()'s wireless/variant, read once for heartbeats
        device_id = settings["device_id"]
        self.registered = asyncio.Event()
        # -- core ----------------------------------------------------------------------
        self.metrics = metrics = Metrics()
        register_runtime(metrics)
        self.health = health = Health()
        self.logger = logger = Logger(mask_fields=settings.get("mask_fields"), clock=clock,
                                             ring_bytes=1536)
        # Heap after full start is the budget here (>= 120 KB on the Wi-Fi image): the command
        # trail closes its files between records (a command costs a file open, commands are
        # rare) and the log ring is 1.5 KB (flushed every 5 s all the same).
        self.audit = audit = Audit(mask_fields=settings.get("mask_fields"), clock=clock,
                                   keep_open=False)
        # failed logins: their own small trail, at most two lines a minute (denial_log)
        # (closed between lines: written rarely, and open files cost heap)
        self.denials = denials = DenialLog(Audit(name="auth.log", max_bytes=8192, keep=1,
                                                 line_bytes=256, keep_open=False,
                                                 mask_fields=settings.get("mask_fields"),
                                                 clock=clock))
        self.auth = auth = AuthManager(settings.get("device_key"), tenant=settings.get("tenant"),
                                       namespace=settings.get("namespace"),
                                       api_key=settings.get("api_key"), audit=audit, clock=clock,
                                       max_lifetime_s=settings.get("max_token_lifetime_s",
                                                                   86400))
        roles = (settings.get("rbac") or {}).get("roles")
        if roles:
            auth.set_roles(roles)
        tls_options, self.fleet_refused = fleet_tls_options(settings)
        # one client (and body buffer, and TLS context) for all
        # one client for every fleet call; its body buffer bounds the largest answer (config)
        self.http = http = HttpClient(auth=auth,
                                      max_body=settings.get("http_client_max_body", 4096),
                                      **tls_options)
        self.network = NetworkManager(settings.get("wifi_ssid"), settings.get("wifi_password"),
                                      hal=self.hal)
        audit.register(metrics, health)  # no task of its own: not in the start list
        boot = self.boot
        metrics.gauge("boot_count", "Boots counted by the boot counter",
                      read=lambda: boot.boot_count)
        # the API refuses tokens until the clock is trusted: not ready before that
        health.add_check("time_synced", clock.health)
        clock.on_sync(lambda: self._log("INFO", "clock synced", steps=clock.steps,
                                        lower_bound=clock.lower_bound()))
        self._build_fleet(settings, device_id, store, version)
        # -- the role ------------------------------------------------------------------
        kwargs = {}
        for key, value in settings.items():
            if key not in DEVICE_KEYS:
                kwargs[key] = value
        if settings.get("role") != "relays":
            kwargs.pop("restore_desired", None)  # only relays restore a desired state
        kwargs.update({"auth": auth, "metrics": metrics, "health": health, "logger": logger,
                       "audit": audit, "config": self.config, "state": self.state,
                       "alarms": self.alarms, "clock": clock, "denials": denials})
        self.controller = controller = controller_class(**kwargs)
        from iotlib.ota.routes import add_ota_routes
        add_ota_routes(controller.server, self.ota)
        # -- the one start list (iotlib.lifecycle); the controller goes after it ------------
        managers = [self.network, auth, logger, denials, self.link]
        if self.safe_mode:  # no config poller, no state: alarms, OTA and time at once
            managers += [c for name, c in self.components.managers if name != "state"]
        else:
            managers += [self.config, self.components]
            self.config.subscribe(controller.on_config, controller.veto_config,
                                  controller.CONFIG_SECTIONS)
        self.managers = managers
        for m in managers:
            m.register(metrics, health)

    def _log(self, level, msg, **fields):
        self.logger.log(level, msg, fields)

    def _describe(self):
        """What the fleet inventory shows beyond uptime and heap: sent with every heartbeat."""
        if self._image_kind is None:
            from iotlib.buildinfo import build_info
            info = build_info()
            self._image_kind = {"wireless": bool(info.get("wireless")), "variant": info.get("variant")}
        ota = self.ota
        return {"firmware_version": ota.current_version(), "image": self._image_kind,
                "safe_mode": self.safe_mode, "ota": {"trial": ota.on_trial(), "state": ota.state}}

    def _build_fleet(self, settings, device_id, store, version):
        from iotlib.registration import Registration
        from iotlib.watchdog_manager import WatchdogManager
        from iotlib.config_manager import ConfigManager
        from iotlib.config_schema import validator
        from iotlib.state_manager import StateManager
        from iotlib.alarm_manager import AlarmManager
        from iotlib.ota.manager import OTAUpdateManager
        from iotlib.fleet_tls import fleet_tls_mode
        from iotlib.lifecycle import Components

        auth, http, metrics, health = self.auth, self.http, self.metrics, self.health
        # no discovery URL: a standalone device (API, config from device.json/flash only)
        fleet = bool(settings.get("service_discovery_url"))
        sd = discovery_base(settings.get("service_discovery_url") or "http://127.0.0.1/api")
        role = settings.get("role") or "none"
        self.registration = reg = Registration(
            sd, auth, device_id, role=role,
            firmware_version=self.bundles.running_version() or version,
            address=settings.get("host") or "0.0.0.0", port=settings.get("port", 80),
            capabilities=[role], http=http)
        self.timesync = ntp = _timesync(settings, self.clock)
        self.alarms = alarms = AlarmManager(None, auth, device_id, http=http, store=store,
                                            clock=self.clock, autostart=False, services=reg)
        self.clock.on_sync(alarms.on_clock_synced)
        if ntp is not None:
            ntp.alarms = alarms
        self.state = StateManager(None, auth, device_id, http=http, store=store, alarms=alarms,
                                  poll_ms=int(settings.get("state_poll_s", 30) * 1000),
                                  services=reg)
        self.watchdog = WatchdogManager(sd, auth, device_id, registration=reg, http=http,
                                        max_missed=settings.get("max_missed", 5),
                                        use_wdt=settings.get("use_wdt", True), boot=self.boot,
                                        alarms=alarms, health=health, network=self.network,
                                        describe=self._describe, hal=self.hal)
        self.link = FleetLink(reg, self.watchdog, log=self._log, enabled=fleet, refused=self.fleet_refused)
        if fleet:  # how far the fleet server is authenticated, for operators reading /health
            tls_mode = fleet_tls_mode(settings, self.fleet_refused)
            health.add_check("fleet_tls", lambda: (self.fleet_refused is None, tls_mode), required=False)
            if "NOT verified" in tls_mode:
                self._log("WARNING", tls_mode)
        # the configuration's schema: the core sections and the running role's own
        roles = () if self.safe_mode or role == "none" else (role,)
        self.config = config = ConfigManager(
            None, auth, device_id, http=http, store=store, validate=validator(*roles),
            interval_s=settings.get("config_poll_s", 30), audit=self.audit, logger=self.logger,
            network=_FleetGate(self.network, self.registered), required=fleet, services=reg)
        config.subscribe(auth.on_config, None, ("rbac",))
        config.subscribe(self.logger.on_config, None, ("log_level", "mask_fields"))
        if ntp is not None:
            config.subscribe(ntp.on_config, None, ("ntp_servers",))
        config.subscribe(self._on_heartbeat_config, None, ("heartbeat_s",))
        self.ota = ota = OTAUpdateManager(None, auth, device_id=device_id, http=http,
                                          store=self.bundles, factory_version=version,
                                          health=health, audit=self.audit, services=reg,
                                          alarm=self._ota_alarm, image=self.image, hal=self.hal)
        ota.after_boot()  # the loader's word on a staged image: delete it, alarm a refusal
        # discovery's "check_update" checks now instead of at the next poll
        self.watchdog.on_action("check_update", self._push_update_check)
        now = ota.on_trial()  # the trial deadline runs whether or not the fleet answers
        optional = [("alarms", alarms), ("state", AfterRegistration(self.state, self.registered)),
                    ("ota", AfterRegistration(ota, self.registered, now))]
        if ntp is not None:  # at once: the fleet's servers wake it when registration ends
            optional.append(("timesync", ntp))
        self.components = Components(config, optional)  # enabled_components switches them
        reg.on_registered(self._on_registered)

    def _on_heartbeat_config(self, changed, config):
        self.watchdog.heartbeat_s = config.get("heartbeat_s")

    def _push_update_check(self):
        if self.safe_mode or self.components.running("ota"):
            return self.ota.check_now()  # a coroutine: the watchdog runs it as a task
        self._log("INFO", "check_update ignored: OTA is disabled")

    def _ota_alarm(self, type_, severity, detail):
        self.alarms.report_alarm({"type": type_, "severity": severity, "source": "ota",
                                  "message": detail})

    def _on_registered(self, reply):
        """What (re)registration must do once: the managers ask the Registration for their
        URLs themselves; state and alarms catch up now, time sync tries the fleet's servers."""
        self.state.reconnected()
        self.alarms.flush_soon()
        if self.timesync is not None:
            self.timesync.set_servers(self.registration.ntp_servers, "discovery")
        self.registered.set()
        self._log("INFO", "registered", services=",".join(self.registration.services))

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self):
        """The outputs to their safe state, the start list in order, the controller last."""
        self.controller.safe_start()
        for m in self.managers:
            await m.start()
        await self.controller.start()

    async def main(self):
        """Install the loop's exception handler, start everything and serve until stop()."""
        self.alarms.install()
        self.report_safe_mode()
        await self.start()
        await self.controller.serve()

    def report_safe_mode(self):
        """In safe mode: log it and raise the critical `safe_mode` alarm (sent once the
        device has registered)."""
        if not self.safe_mode:
            return
        detail = "image %s never confirmed; safe mode: network, health, OTA only" % (
            self.ota.current_version())
        self._log("ERROR", "safe mode", image=self.ota.current_version())
        self.alarms.report_alarm({"type": "safe_mode", "severity": "critical", "source": "ota",
                                  "message": detail})

    async def stop(self):
        """The controller first, then the start list in reverse."""
        await self.controller.stop()
        for m in reversed(self.managers):
            await m.stop()
