# Wi-Fi station management: connect with a deadline, watch the link with a reachability
# probe (a TCP connect, because isconnected() stays true behind a dead access point),
# reconnect with capped exponential backoff plus jitter, and publish "up"/"down".
import asyncio
import os

from iotlib.task import BackgroundTask


async def tcp_probe(host, port, timeout_ms, settle_ms=50):
    """True when a TCP connection to host:port opens within timeout_ms."""
    try:
        reader, writer = await asyncio.wait_for_ms(asyncio.open_connection(host, port),
                                                   timeout_ms)
    except (OSError, asyncio.TimeoutError):
        return False
    # a non-blocking connect "completes" even when refused; the error shows on the first read
    try:
        await asyncio.wait_for_ms(reader.read(1), settle_ms)
        up = True  # data or an orderly close: someone answered
    except asyncio.TimeoutError:
        up = True  # connected, the peer is just quiet
    except OSError:
        up = False
    writer.close()
    await writer.wait_closed()
    return up


def _jitter(limit):
    # os.urandom exists on unix and rp2 alike; avoids depending on the random module
    return int.from_bytes(os.urandom(2), "little") % (limit + 1) if limit > 0 else 0


class NetworkManager:
    def __init__(self, ssid, password, link=None, probe=None, connect_timeout_ms=15000,
                 check_ms=5000, backoff_min_ms=500, backoff_max_ms=60000, probe_timeout_ms=2000,
                 hal=None):
        for name, value in (("ssid", ssid), ("password", password)):
            if value is not None and not isinstance(value, str):
                raise TypeError("NetworkManager: %s must be a string, not %s"
                                % (name, type(value).__name__))
        self.ssid = ssid
        self.password = password
        if link is None:  # the hardware's (iotlib.hal): the radio, none, or the simulation's
            if hal is None:  # built the seed's way
                from iotlib import seed_defaults
                hal = seed_defaults.hal()
            link = hal.link()
        self.link = link
        self.probe = probe  # (host, port) that must answer, or None for link state only
        self.connect_timeout_ms = connect_timeout_ms
        self.check_ms = check_ms
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.probe_timeout_ms = probe_timeout_ms
        self.up = asyncio.Event()  # set while the network is usable
        self.down = asyncio.Event()  # set while it is not
        self.down.set()
        self.failures = 0  # consecutive failed attempts, drives the backoff
        self.reconnects = 0
        self.last_delay_ms = 0
        self.radio_error = None  # why the radio last failed to come up, for health
        self._listeners = []
        self._task = BackgroundTask()
        self._reconnect_metric = None

    # ---- state ------------------------------------------------------------------------------

    def is_up(self):
        return self.up.is_set()

    def on_change(self, fn):
        """fn(up: bool) runs on every up/down transition."""
        self._listeners.append(fn)

    def _set_state(self, up):
        if up == self.up.is_set():
            return
        (self.up if up else self.down).set()
        (self.down if up else self.up).clear()
        for fn in self._listeners:
            fn(up)

    async def wait_up(self):
        await self.up.wait()

    async def reachable(self):
        if not self.link.isconnected():
            return False
        if self.probe is None:
            return True
        return await tcp_probe(self.probe[0], self.probe[1], self.probe_timeout_ms)

    # ---- connecting -------------------------------------------------------------------------

    async def connect(self, timeout_ms=None):
        """Join the network; True when up (link and probe) within the deadline."""
        timeout_ms = timeout_ms or self.connect_timeout_ms
        if not self.ssid and getattr(self.link, "needs_ssid", False):
            # a radio not provisioned for Wi-Fi has nothing to join: say so in health
            self.radio_error = "no wifi_ssid in device.json"
            self._set_state(False)
            self.failures += 1
            return False
        try:
            self.link.active(True)
            self.link.set_power_save(False)
            if not self.link.isconnected():
                self.link.connect(self.ssid, self.password)
            self.radio_error = None
        except OSError as e:
            # A radio that does not come up (no chip answering, a driver fault) is one more
            # failed attempt: retried with backoff, never an exception out of the manager.
            self.radio_error = "radio: %s" % e
            self._set_state(False)
            self.failures += 1
            return False
        waited = 0
        while not self.link.isconnected() and waited < timeout_ms:
            await asyncio.sleep_ms(100)
            waited += 100
        up = await self.reachable()
        self._set_state(up)
        self.failures = 0 if up else self.failures + 1
        return up

    def backoff_ms(self):
        """Delay before the next attempt: doubling from backoff_min_ms, capped, plus up to
        half again as jitter so a fleet that lost the same access point does not retry in step."""
        base = self.backoff_min_ms << min(max(self.failures - 1, 0), 16)
        base = min(base, self.backoff_max_ms)
        return base + _jitter(base // 2)

    async def monitor(self):
        """Forever: check the link, reconnect with backoff when it is lost (start()'s task,
        or the caller's own: stop() ends it either way)."""
        if not self._task.start():
            return
        while True:
            if await self.reachable():
                self._set_state(True)
                self.failures = 0
                await asyncio.sleep_ms(self.check_ms)
                continue
            self._set_state(False)
            if self.failures:
                self.last_delay_ms = self.backoff_ms()
                await asyncio.sleep_ms(self.last_delay_ms)
            try:
                self.link.disconnect()
            except OSError:
                pass  # the radio is already down; connect() reports why
            self.reconnects += 1
            if self._reconnect_metric is not None:
                self._reconnect_metric.inc()
            await self.connect()

    async def start(self):
        self._task.start(self.monitor)

    async def stop(self):
        self._task.stop()

    # ---- health and metrics -----------------------------------------------------------------

    def register(self, metrics, health):
        self._reconnect_metric = metrics.counter("network_reconnects_total",
                                                 "Reconnect attempts")
        metrics.gauge("network_up", "1 while the network is reachable",
                      read=lambda: 1 if self.is_up() else 0)
        metrics.gauge("wifi_rssi_dbm", "Received signal strength",
                      read=lambda: self.link.rssi() or 0)
        health.add_check("network", self._health)

    def _health(self):
        if self.is_up():
            return True, "up"
        return False, self.radio_error or "down"
