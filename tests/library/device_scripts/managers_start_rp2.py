# The managers built, registered and started on the RELAYS image in rp2040py; free heap; run by tests/library/test_managers_rp2.py.
import gc, asyncio, time, machine
gc.collect()
before = gc.mem_free()
from iotlib.metrics import Metrics, register_runtime
from iotlib.health import Health
from iotlib.auth_manager import AuthManager
from iotlib.config_manager import ConfigManager
from iotlib.network_manager import NetworkManager
from iotlib.logger import Logger
from iotlib.audit import Audit
metrics, health = Metrics(), Health()
network = NetworkManager("SSID", "PASSWORD", connect_timeout_ms=300)
auth = AuthManager("device_key", tenant="acme", namespace="plant1", api_key="k" * 32)
config = ConfigManager("http://192.0.2.1/api", auth, "dev1")
logger = Logger(mask_fields=["token", "password"])
audit = Audit()
managers = (network, auth, config, logger, audit)
for m in managers:
    m.register(metrics, health)
register_runtime(metrics)
async def main():
    print("link", type(network.link).__name__, await network.connect())
    print("network check", health.readyz())
    for m in (network, auth, logger):
        await m.start()
    logger.info("started", token="abc")
    token = auth.issue("alice", "operator", ttl_s=60)
    print("unsynced", auth.authorize(token, "relays:write")[:2], time.gmtime()[0])
    auth.clock.sync(1767225600 * 1000000 - auth.clock.raw_us())  # an SNTP answer: 2026-01-01
    print("rtc", time.gmtime()[0], machine.RTC().datetime()[:3], auth.clock.trusted)
    token = auth.issue("alice", "operator", ttl_s=60)
    print("authorize", auth.authorize(token, "relays:write")[:2])
    await asyncio.sleep_ms(100)
    for m in (network, auth, logger):
        await m.stop()
    audit.record("boot", ok=True)
    print("audit", audit.verify())
    print("ready", health.readyz()[0], "metrics", len(metrics.render()) > 0)
asyncio.run(main())
gc.collect()
print("mem_free", gc.mem_free(), "used", before - gc.mem_free())
