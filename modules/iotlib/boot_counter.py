# Boot counter in persistent storage: every boot of the device and why it happened (reset
# cause, watchdog resets), for the heartbeat and /metrics; `unconfirmed` counts boots since the
# last mark_good() (a reset loop). OTA's trial boots are not counted here: BundleStore counts a
# bundle's, the loader an image's (docs/ota.md, "Boot counters").
#
# The cause comes from the note a deliberate reset left in the file (iotlib.hal's reset(cause)
# and note_reset() write it), else from the hardware (the hal's reset_cause(): rp2 says "wdt"
# after a watchdog timeout), else "power".
import time

from iotlib.hal import CAUSE_POWER, CAUSE_WDT, load
from iotlib.storage import Storage

CAUSE_ESCALATION = "escalation"  # WatchdogManager reset the device after missed heartbeats
CAUSE_OTA = "ota"  # OTAUpdateManager reset into an installed, committed or rolled-back update


class BootCounter:
    def __init__(self, store=None, name="boot.json", loop_after=3, cause=None, clock=None,
                 hal=None):
        self.store = store if store is not None else Storage(".")
        self.hal = hal  # None: iotlib.hal.load() when the hardware is asked
        self.clock = clock  # iotlib.clock.Clock: boot_time, re-stamped at the first sync
        self.name = name
        self.loop_after = loop_after  # this many unconfirmed boots in a row is a reset loop
        self._cause = cause            # injected by tests; else the hal's reset_cause()
        self.state = None

    def _load(self):
        s = self.store.read_json(self.name) or {}
        s.setdefault("boots", 0)
        s.setdefault("unconfirmed", 0)
        s.setdefault("wdt_resets", 0)
        return s

    def record_boot(self):
        """Count this boot (call once, early); returns the state dict."""
        s = self._load()
        note = s.pop("pending_cause", None)
        hw = None if (self._cause or note) else (self.hal or load()).reset_cause()
        cause = self._cause or note or hw or CAUSE_POWER
        if hw is None and not self._cause and note is None and s.get("running"):
            # the previous boot never shut down cleanly and left no note: on a port without
            # reset_cause() that is most likely a crash or a watchdog (power loss looks alike)
            cause = "unclean"
        s["boots"] += 1
        s["unconfirmed"] += 1  # mark_good() clears it
        if cause in (CAUSE_WDT, CAUSE_ESCALATION):
            s["wdt_resets"] += 1
        s["reset_cause"] = cause
        s["running"] = True
        s["boot_time"] = self._wall_time()
        s["time_synced"] = bool(self.clock is not None and self.clock.trusted)
        self.store.write_json(self.name, s)
        self.state = s
        return s

    def _wall_time(self):
        return self.clock.time() if self.clock is not None else int(time.time())

    def stamp_synced(self):
        """Clock.on_sync listener: boot_time was read off the unsynced RTC at boot; now it
        is the synced time minus the uptime."""
        s = self._state()
        if s.get("time_synced"):
            return
        s["boot_time"] = self._wall_time() - self.clock.uptime_s()
        s["time_synced"] = True
        self.store.write_json(self.name, s)

    def _state(self):
        if self.state is None:
            self.state = self._load()
        return self.state

    @property
    def boot_count(self):
        return self._state()["boots"]

    @property
    def unconfirmed(self):
        return self._state()["unconfirmed"]

    @property
    def reset_cause(self):
        return self._state().get("reset_cause")

    @property
    def reset_loop(self):
        """True when the last `loop_after` boots all ended before mark_good()."""
        return self._state()["unconfirmed"] >= self.loop_after

    @property
    def clean(self):
        """This boot followed a power-on or a confirmed image, not a watchdog/escalation reset."""
        return self.reset_cause not in (CAUSE_WDT, CAUSE_ESCALATION, "unclean")

    def mark_good(self):
        """This boot is healthy (OTA commits with this): the unconfirmed run starts over."""
        s = self._state()
        s["unconfirmed"] = 0
        self.store.write_json(self.name, s)

    def note_reset(self, cause):
        """Called just before a deliberate reset, so the next boot knows why."""
        s = self._state()
        s["pending_cause"] = cause
        s["running"] = False
        self.store.write_json(self.name, s)

    def shutdown(self):
        """A clean stop (not a reset): the next boot is not counted as unclean."""
        s = self._state()
        s["running"] = False
        self.store.write_json(self.name, s)

    def report(self):
        s = self._state()
        return {"boots": s["boots"], "unconfirmed": s["unconfirmed"], "wdt_resets": s["wdt_resets"],
                "reset_cause": s.get("reset_cause"), "reset_loop": self.reset_loop,
                "boot_time": s.get("boot_time"), "time_synced": s.get("time_synced", False)}
