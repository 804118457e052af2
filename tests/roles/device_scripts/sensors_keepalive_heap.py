# Run by tests/roles/test_sensors.py.
import gc, asyncio, time
from iotlib.ws_stream import Hub

class Ws:
    closed = False
    def __init__(self): self.sent = 0
    async def send(self, data, opcode=None): self.sent += 1

hub = Hub(4, 8)
clients = [hub.add(Ws(), "a") for _ in range(4)]
tasks = [asyncio.create_task(c.pump()) for c in clients]

async def rounds(n):
    for _ in range(n):
        hub.ping(time.ticks_ms())
        await asyncio.sleep_ms(0)
        for c in clients:
            c.pong()
        hub.expire(time.ticks_ms(), 1000)

async def main():
    await rounds(20)
    gc.collect(); before = gc.mem_alloc()
    await rounds(500)
    gc.collect()
    print("grown", gc.mem_alloc() - before, "sent", [c.ws.sent for c in clients],
          "pings", hub.pings, "timeouts", hub.ping_timeouts)
asyncio.run(main())
