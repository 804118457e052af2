# The one manager protocol. Every manager the Device (iotlib.device) holds answers
#
#   async start()               begin its work (usually a background task); returns soon
#   async stop()                end it; start() after stop() runs it again
#   register(metrics, health)   add its metrics and health checks (may add none)
#
# Duck-typed on purpose: a base class would cost heap in every image for no behaviour
# (tests/test_lifecycle.py checks every manager of a built Device instead).
# The Device keeps ONE ordered list: it registers each, starts them in order and the role's
# controller last (its own work: relay guard, sampling, serving), and stops the controller
# first, then the list in reverse. Safe mode is another list, run the same way. A manager
# takes its collaborators in its constructor and starts nothing it was handed; one that owns
# others (FleetLink its WatchdogManager, Components the optional ones) starts, stops and
# registers those itself.
import asyncio


class Components:
    """The optional managers, switched on and off by the configuration's `enabled_components`
    section (a name it does not list: `default`). One entry of the Device's list: start()
    applies the running configuration, every change of the section applies it again, stop()
    stops what runs (in reverse order). running(name) is the answer for everyone else."""

    def __init__(self, config, managers, default=True):
        self.config = config          # ConfigManager: its .config is the running configuration
        self.managers = managers      # [(name, manager)] in start order
        self.default = default
        self._running = []            # names started and not stopped since
        self._on = False
        config.subscribe(self._changed, None, ("enabled_components",))

    def running(self, name):
        return name in self._running

    def _wanted(self, name):
        section = (self.config.config or {}).get("enabled_components") or {}
        return self._on and section.get(name, self.default)

    async def _apply(self):
        for name, manager in (self.managers if self._on else reversed(self.managers)):
            want = self._wanted(name)
            if want and name not in self._running:
                self._running.append(name)
                await manager.start()
            elif not want and name in self._running:
                self._running.remove(name)
                await manager.stop()

    def _changed(self, changed, config):
        if self._on:  # a config subscriber is not async: the switch runs as its own task
            asyncio.create_task(self._apply())

    async def start(self):
        self._on = True
        await self._apply()

    async def stop(self):
        self._on = False
        await self._apply()

    def register(self, metrics, health):
        for _, manager in self.managers:
            manager.register(metrics, health)
