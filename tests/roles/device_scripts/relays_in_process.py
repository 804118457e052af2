# A RelaysController in process with recording stand-ins (trail, alarms, state); run by tests/roles/test_relays.py.
import asyncio, _iotlib
from relays_controller import RelaysController
from iotlib.auth_manager import AuthManager

class Trail:
    def __init__(self): self.events = []
    def record(self, event, **fields): self.events.append((event, fields))

class Alarms:
    def __init__(self): self.alarms = []
    def report_alarm(self, a): self.alarms.append(a)

trail, alarms = Trail(), Alarms()
ctl = RelaysController(device_id="d", relays={"a": {"pin": 6}, "b": {"pin": 7, "active_low": True},
                       "c": {"pin": 8, "max_on_s": 1}}, interlocks=[["a", "b"]],
                       auth=AuthManager("dk", api_key="k"), audit=trail, alarms=alarms)
ctl.setup_relays()
