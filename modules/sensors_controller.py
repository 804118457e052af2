# SensorsController: the sensor role (sampling and a WebSocket stream). Filled in by the roles issue.
from iotlib.buildinfo import build_info

ROLE = "sensors"


class SensorsController:
    def __init__(self, **settings):
        self.settings = settings

    def describe(self):
        return {"role": ROLE, "build": build_info()}
