# RelaysController: the relay role (REST over GPIO relays). Filled in by the roles issue.
from iotlib.buildinfo import build_info

ROLE = "relays"


class RelaysController:
    def __init__(self, **settings):
        self.settings = settings

    def describe(self):
        return {"role": ROLE, "build": build_info()}
