# Run by tests/library/test_logging.py.
import asyncio
from iotlib.logger import Logger
log = Logger(ring_bytes=256, max_bytes=65536, flush_ms=100)
syncs = []
flush = log.flush
def counted():
    syncs.append(1)
    flush()
log.flush = counted
async def main():
    await log.start()
    for i in range(500):
        log.info("steady", n=i)
        await asyncio.sleep_ms(1)
    print(len(syncs), log.caller_writes)
    await log.stop()
asyncio.run(main())
