# Run by tests/library/test_logging.py.
import asyncio, os
from iotlib.logger import Logger
log = Logger(flush_ms=50, max_bytes=400, keep=5, max_age_s=100, ring_bytes=1024)
async def main():
    await log.start()
    log.info("hello", n=1)
    print(len(log.files()))
    await asyncio.sleep_ms(120)
    print(len(log.files()), open("logs/app.log").read().count("hello"))
    for i in range(60):
        log.info("fill", n=i)
        log.flush()
    print(len(log.files()))
    log.clock.offset_s = 1000  # everything rotated so far is now older than max_age_s
    for i in range(10):
        log.info("late", n=i)
    log.info("last")
    await log.stop()  # stop flushes what is still in RAM
    print(log.files(), "last" in open("logs/app.log").read())
asyncio.run(main())
