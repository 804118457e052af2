# Fan-out of sensor frames to WebSocket clients without letting one slow client hold
# up the others or grow the heap.
#
# Each client has a fixed-size ring of frame references (the frames themselves are
# shared: one string per sample, whatever the number of clients) and its own sender
# task. publish() never awaits: when a client's ring is full the oldest frame is
# dropped and counted. A client whose socket stalls therefore loses frames; the other
# clients' senders keep running.
#
# Keepalive: ping() puts the ping frame in the client's one-frame priority slot (never
# dropped, sent before queued frames by the client's own sender, so no second writer on
# the socket) and notes when; a pong clears it. expired() names the clients whose ping is
# still unanswered after a timeout (a stalled socket never even gets its ping out).
import asyncio
import time

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
        while True:
            frame = await self.queue.get()
            if frame is PING:
                await self.ws.send(frame, 9)  # opcode PING
                continue
            await self.ws.send(frame)
            self.sent += 1


class Hub:
    """The set of clients, bounded by max_clients; publish() fans a frame out."""

    def __init__(self, max_clients=4, queue_size=8):
        self.max_clients = max_clients
        self.queue_size = queue_size
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
