# Run by tests/library/test_logging.py.
import asyncio, json
from iotlib.metrics import Metrics, register_runtime
from iotlib.health import Health
from iotlib.auth_manager import AuthManager
from iotlib.config_manager import ConfigManager
from iotlib.logger import Logger
from iotlib.network_manager import NetworkManager
from iotlib.link_sim import SimLink
from iotlib.audit import Audit
metrics, health = Metrics(), Health()
auth = AuthManager("device_key", tenant="acme", namespace="p", api_key="k" * 32)
network = NetworkManager("SSID", "PASSWORD", link=SimLink())
config = ConfigManager("http://127.0.0.1:1/api", auth, "dev1")
logger = Logger(mask_fields=["token"])
audit = Audit()
for m in (network, auth, config, logger, audit):
    m.register(metrics, health)
register_runtime(metrics)
health.add_check("watchdog", lambda: True, live=True)
auth.authorize("bad.token.x", "relays:read")
metrics.histogram("http_request_seconds", "Request latency", ("route",)).observe(0.02, ("/relays",))
metrics.counter("odd_total", "quote \" and backslash \\", ("l",)).inc(labels=('a"b\\c\nd',))
print(json.dumps([health.readyz(), health.livez()]))
asyncio.run(network.connect())
print(json.dumps(health.readyz()[1]["network"]))
print(metrics.render())
