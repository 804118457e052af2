# What the relay and sensor roles share: their settings, the default auth manager, the
# collaborators, the request limits and the ApiServer, and the lifecycle of the role's own
# work (relay guard, sampling, serving). The managers it is handed are started and stopped
# by the Device (iotlib.device, iotlib.lifecycle), never by the controller.
#
# Built from settings alone, the seed's way,
#   controller = RelaysController(wifi_ssid=..., device_id=..., device_key=...,
#                                 service_discovery_url=..., relay_pins={...})
#   await controller.main()
# main() first makes the controller a whole device with the boot path's own wiring
# (iotlib.standalone -> iotlib.device.Device: registration, heartbeats, config, state,
# alarms, OTA, time sync), then serves as that device's controller.
from iotlib.api_server import ApiServer, ConnectionLimits
from iotlib.rate_limit import RequestLimits


class RoleController:
    """Base of RelaysController and SensorsController. A subclass keeps its own constructor
    keywords, calls RoleController.__init__ first and provides _halt() (stop its own tasks).
    """

    LISTENING = None  # logged (INFO, with the port) once main() starts serving
    CONFIG_SECTIONS = ()  # what the Device subscribes on_config/veto_config to

    def __new__(cls, *args, **settings):
        self = object.__new__(cls)
        # settings: what a standalone controller's main() builds its Device from; None when
        # the caller hands it managers (the boot path, tests): then the caller wires it
        self.settings = settings
        for key in ("auth", "config", "logger", "audit", "state", "alarms", "metrics",
                    "health", "clock", "denials", "sampler"):
            if key in settings:
                self.settings = None
                return self
        names = ("wifi_ssid", "wifi_password", "device_id", "device_key",
                 "service_discovery_url")
        if len(args) > len(names):
            raise TypeError("%s: settings after service_discovery_url go by keyword"
                            % cls.__name__)
        for name, value in zip(names, args):
            settings[name] = value
        return self

    def __init__(self, wifi_ssid=None, wifi_password=None, device_id=None, device_key=None,
                 service_discovery_url=None, tenant=None, namespace=None, api_key=None,
                 host="0.0.0.0", port=80, rate_limit=None, auth=None, config=None, logger=None,
                 audit=None, state=None, alarms=None, metrics=None, health=None, clock=None,
                 denials=None, http=None):
        self.device_id = device_id
        self.host = host
        self.port = port
        if auth is None:
            from iotlib.auth_manager import AuthManager
            auth = AuthManager(device_key, tenant=tenant, namespace=namespace, api_key=api_key)
        self.auth = auth
        self.clock = clock or auth.clock  # the device's one wall clock (sample timestamps)
        self.config = config
        self.logger = logger
        self.audit = audit
        self.state = state
        self.alarms = alarms
        self.limits = RequestLimits()
        if rate_limit:
            self.limits.configure(rate_limit)
        self.server = ApiServer(auth, self.limits, metrics=metrics, health=health, logger=logger,
                                denials=denials, connections=ConnectionLimits.from_settings(http))

    def _halt(self):
        pass

    def safe_start(self):
        """Outputs to their safe state: the Device runs it before anything else starts."""

    def _apply_rate_limit(self, changed, config):
        """The "rate_limit" config section, the same for every role (on_config calls it)."""
        if "rate_limit" in changed and config.get("rate_limit"):
            self.limits.configure(config["rate_limit"])

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self):
        """The role's own work (a subclass: relay guard, sampling); the Device calls it after
        its managers, and serve() after it."""

    async def stop(self):
        device = getattr(self, "device", None)
        if device is not None:  # standalone: the device stops this controller and its managers
            self.device = None
            await device.stop()
            return
        self.server.stop()
        self._halt()

    async def main(self):
        """Start and serve the API until stop(). Built from settings alone, the controller
        first becomes a whole device (iotlib.standalone) and runs as the boot does."""
        if self.settings is not None:
            from iotlib.standalone import as_device
            await as_device(self).main()
            return
        await self.start()
        await self.serve()

    async def serve(self):
        """Serve the API until stop()."""
        if self.LISTENING is not None and self.logger is not None:
            self.logger.log("INFO", self.LISTENING, {"port": self.port})
        try:
            await self.server.serve(self.host, self.port)
        finally:
            self._halt()
