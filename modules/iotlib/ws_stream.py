# Fan-out of sensor frames to WebSocket clients without letting one slow client hold
# up the others or grow the heap.
#
# Each client has a fixed-size ring of frame references (the frames themselves are
# shared: one string per sample, whatever the number of clients) and its own sender
# task. publish() never awaits: when a client's ring is full the oldest frame is
# dropped and counted. A client whose socket stalls therefore loses frames; the other
# clients' senders keep running.
import asyncio


class ClientQueue:
    """A bounded FIFO of frames; put() drops the oldest frame when full."""

    def __init__(self, size=8):
        self._ring = [None] * size
        self._head = 0  # next to read
        self._count = 0
        self._ready = asyncio.Event()
        self.dropped = 0

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
        while not self._count:
            self._ready.clear()
            await self._ready.wait()
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

    async def pump(self):
        """Send queued frames until the socket fails (run as the client's sender task)."""
        while True:
            frame = await self.queue.get()
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
