# WebSocket streams: the session of each client (handshake result, message limits, close
# codes), the keepalive, and the fan-out of frames without letting one slow client hold up
# the others or grow the heap. A role only decides what a client's message means (the
# `on_message` callback of Hub.serve) and publishes frames.
#
# Session (Hub.serve, the handler of a stream route): a client beyond max_clients gets a
# 503 (Retry-After: 5) before any handshake; a request that is not a valid upgrade gets
# handshake_error's 400/426. After the 101 the client's socket send buffer is set to
# `sndbuf` when given (the sim sets it small, so a slow reader backs up as over lwIP on
# the device); its messages are bounded by a token bucket (client_rps, client_burst): one
# over the limit is answered {"error": "rate_limited", ...} and not handled. It ends with
# a close code: 1000 when the server stops it normally, 1011 when it missed a pong, the
# protocol's own code (iotlib.websocket) for a bad frame, none when the socket is gone.
#
# Each client has a fixed-size ring of frame references (the frames themselves are
# shared: one string per sample, whatever the number of clients) and its own sender
# task. publish() never awaits: when a client's ring is full the oldest frame is
# dropped and counted. A client whose socket stalls therefore loses frames; the other
# clients' senders keep running.
#
# Keepalive (one task for every client, start_keepalive/stop_keepalive): every ping_s
# the ping frame goes in each client's one-frame priority slot (never dropped, sent
# before queued frames by the client's own sender, so no second writer on the socket) and
# the time is noted; a pong clears it. A client whose ping is still unanswered after
# pong_timeout_s (a stalled socket never even gets its ping out) is closed with 1011.
import asyncio
import time

from iotlib import websocket
from iotlib.http_server import ALREADY_HANDLED, error, send_buffer
from iotlib.rate_limit import RateLimiter

_CLOSE_TIMEOUT = 1011  # no pong to our ping in time
PING = b"ka"  # payload of the server's ping frames (the one object, sent by identity)


class ClientQueue:
    """A bounded FIFO of frames; put() drops the oldest frame when full."""

    def __init__(self, size=8):
        self._ring = [None] * size
        self._head = 0  # next to read
        self._count = 0
        self._ready = asyncio.Event()
        self._urgent = None  # one frame sent before the ring, never dropped
        self.dropped = 0

    def put_urgent(self, frame):
        """Queue `frame` ahead of the ring (one slot: a second replaces the first)."""
        self._urgent = frame
        self._ready.set()

    def put(self, frame):
        """Queue `frame`; return False when an older frame had to be dropped for it."""
        size = len(self._ring)
        kept = True
        if self._count == size:
            self._head = (self._head + 1) % size
            self._count -= 1
            self.dropped += 1
            kept = False
        self._ring[(self._head + self._count) % size] = frame
        self._count += 1
        self._ready.set()
        return kept

    async def get(self):
        while not self._count and self._urgent is None:
            self._ready.clear()
            await self._ready.wait()
        frame = self._urgent
        if frame is not None:
            self._urgent = None
            return frame
        frame = self._ring[self._head]
        self._ring[self._head] = None
        self._head = (self._head + 1) % len(self._ring)
        self._count -= 1
        return frame

    def __len__(self):
        return self._count


class StreamClient:
    """One connected client: what it subscribed to, its queue and its counters."""

    def __init__(self, ws, address, queue_size):
        self.ws = ws
        self.address = address
        self.fields = set()
        self.queue = ClientQueue(queue_size)
        self.sent = 0
        self.ping_ms = None  # ticks_ms when the unanswered ping was queued, else None
        self.task = None  # the task serving the client (cancelled when it times out)
        self.timed_out = False

    def ping(self, now):
        """Queue a ping unless one is still unanswered."""
        if self.ping_ms is None:
            self.ping_ms = now
            self.queue.put_urgent(PING)

    def pong(self):
        self.ping_ms = None

    async def pump(self):
        """Send queued frames until the socket fails (run as the client's sender task)."""
        try:
            while True:
                frame = await self.queue.get()
                if frame is PING:
                    await self.ws.send(frame, 9)  # opcode PING
                    continue
                await self.ws.send(frame)
                self.sent += 1
        except Exception:
            pass  # the session's receive loop sees the closed socket and cleans up


class Hub:
    """The set of clients, bounded by max_clients; serve() runs a client's session,
    publish() fans a frame out.

    max_clients, queue_size (frames per client), client_rps / client_burst (messages a
    client may send), ping_s (0: no keepalive), pong_timeout_s (> 0, <= ping_s), sndbuf
    (socket send buffer of a stream client, None: the kernel's)."""

    def __init__(self, max_clients=4, queue_size=8, client_rps=5, client_burst=10, ping_s=20,
                 pong_timeout_s=10, sndbuf=None):
        if ping_s and not 0 < pong_timeout_s <= ping_s:
            raise ValueError("pong_timeout_s: must be > 0 and <= ping_s")
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.client_rps = client_rps
        self.client_burst = client_burst
        self.ping_ms = int(ping_s * 1000)
        self.pong_timeout_ms = int(pong_timeout_s * 1000)
        self.sndbuf = sndbuf
        self._keepalive_task = None
        self.clients = []
        self.dropped = 0  # frames dropped for clients that have since left, plus current
        self.refused = 0  # connections refused because the hub was full
        self.published = 0
        self.pings = 0  # pings queued
        self.ping_timeouts = 0  # clients closed for not answering a ping in time

    def add(self, ws, address):
        """Register a client, or return None when max_clients are already connected."""
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            return None
        client = StreamClient(ws, address, self.queue_size)
        self.clients.append(client)
        return client

    def remove(self, client):
        if client in self.clients:
            self.clients.remove(client)
            self.dropped += client.queue.dropped

    def ping(self, now):
        """Queue a ping for every client (allocates nothing)."""
        for c in self.clients:
            if c.ping_ms is None:
                self.pings += 1
            c.ping(now)

    def expire(self, now, timeout_ms):
        """Mark and cancel the clients whose ping is unanswered after `timeout_ms`;
        their serving task removes them from the hub. Returns how many."""
        n = 0
        for c in self.clients:
            if c.ping_ms is not None and not c.timed_out and \
                    time.ticks_diff(now, c.ping_ms) >= timeout_ms:
                c.timed_out = True
                self.ping_timeouts += 1
                n += 1
                if c.task is not None:
                    c.task.cancel()
        return n

    def subscribed(self, field):
        for c in self.clients:
            if field in c.fields:
                return True
        return False

    def publish(self, field, frame):
        """Queue `frame` for every client subscribed to `field`; never waits."""
        self.published += 1
        for c in self.clients:
            if field in c.fields:
                c.queue.put(frame)

    def dropped_total(self):
        n = self.dropped
        for c in self.clients:
            n += c.queue.dropped
        return n

    def add_metrics(self, m):
        """The stream's gauges, read from the hub at scrape time."""
        m.gauge("ws_clients", "Connected stream clients", read=lambda: len(self.clients))
        m.gauge("ws_dropped_frames_total", "Frames dropped for slow clients",
                read=self.dropped_total)
        m.gauge("ws_refused_total", "Stream connections refused (max clients)",
                read=lambda: self.refused)
        m.gauge("ws_pings_total", "Keepalive pings sent to stream clients",
                read=lambda: self.pings)
        m.gauge("ws_ping_timeouts_total", "Stream clients closed for not answering a ping",
                read=lambda: self.ping_timeouts)

    # ---- sessions ---------------------------------------------------------------------

    async def serve(self, request, on_message):
        """Handle a stream request: refuse it (503 when full, 400/426 for a bad upgrade) or
        upgrade it and run the session until it ends. on_message(client, text) returns the
        reply frame queued for the client."""
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            return error(503, "too many stream clients (max %d)" % self.max_clients,
                         {"Retry-After": "5"})
        refused = websocket.handshake_error(request)
        if refused is not None:
            return refused
        ws = await websocket.upgrade(request, control_rps=self.client_rps,
                                     control_burst=self.client_burst)
        if self.sndbuf:
            send_buffer(request, self.sndbuf)
        await self._session(ws, request.client_addr[0], on_message)
        return ALREADY_HANDLED

    async def _session(self, ws, address, on_message):
        client = self.add(ws, address)
        if client is None:  # raced past the check in serve()
            await ws.close(1013)
            return
        limiter = RateLimiter(self.client_rps, self.client_burst, max_keys=1)
        client.task = asyncio.current_task()
        ws.on_pong = client.pong
        sender = asyncio.create_task(client.pump())
        code = websocket.NORMAL
        try:
            while True:
                message = await ws.receive()
                wait = limiter.take(0)
                if wait:
                    client.queue.put('{"error": "rate_limited", "detail": "too many messages",'
                                     ' "retry_after": %d}' % wait)
                    continue
                client.queue.put(on_message(client, message))
        except websocket.WebSocketError:
            pass  # closed by the client, or refused with a close frame already sent
        except OSError:
            code = None  # the socket is gone
        except asyncio.CancelledError:
            if not client.timed_out:
                raise  # the server is stopping
            code = _CLOSE_TIMEOUT
        finally:
            sender.cancel()
            self.remove(client)
            if code is not None and not ws.closed:
                try:
                    if client.timed_out:  # its socket may be stalled: do not wait on it
                        await asyncio.wait_for_ms(ws.close(code), 1000)
                    else:
                        await ws.close(code)
                except Exception:
                    pass

    # ---- keepalive --------------------------------------------------------------------

    async def _keepalive(self):
        # ping, wait the timeout, close the silent ones, wait out the rest of the interval;
        # a pong (any time) clears the client's ping
        rest = self.ping_ms - self.pong_timeout_ms
        while True:
            await asyncio.sleep_ms(rest)
            self.ping(time.ticks_ms())
            await asyncio.sleep_ms(self.pong_timeout_ms)
            self.expire(time.ticks_ms(), self.pong_timeout_ms)

    def start_keepalive(self):
        self.stop_keepalive()
        if self.ping_ms:
            self._keepalive_task = asyncio.create_task(self._keepalive())

    def stop_keepalive(self):
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            self._keepalive_task = None
