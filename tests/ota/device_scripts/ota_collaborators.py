# The OTA manager's collaborators on the device side: imports, the device token, the reset.
from iotlib.http_client import HttpClient
from iotlib.health import Health
from iotlib.metrics import Metrics
from iotlib.audit import Audit
from iotlib.ota.manager import OTAUpdateManager

class Auth:
    def device_token(self):
        return cfg["token"]

def reset():
    print("RESET")
    sys.exit(0)
