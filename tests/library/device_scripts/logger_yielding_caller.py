# Run by tests/library/test_logging.py.
import asyncio
from iotlib.logger import Logger
log = Logger(ring_bytes=512, max_bytes=16384, keep=2, flush_ms=60000)
async def main():
    await log.start()
    for i in range(200):
        log.info("yielding", n=i)
        await asyncio.sleep_ms(0)
    yielding = log.caller_writes
    for i in range(200):
        log.info("busy", n=i)
    await log.stop()
    print(yielding, log.caller_writes, log.lines, log.dropped)
asyncio.run(main())
