# Run by tests/roles/test_sensors.py.
import _iotlib
from sensors_controller import SensorsController
from iotlib.auth_manager import AuthManager

class Alarms:
    def __init__(self): self.alarms, self.cleared = [], []
    def report_alarm(self, a): self.alarms.append(a)
    def clear_alarm(self, type_, source="device"): self.cleared.append(type_)

alarms = Alarms()
ctl = SensorsController(fields={"v": {"source": "adc1", "rate_hz": 1, "threshold_high": 3.0,
                                      "threshold_low": 0.5}},
                        auth=AuthManager("dk", api_key="k"), alarms=alarms)
for raw in (2048, 4000, 4000, 2048, 100, 100, 4095):
    _iotlib.sim_adc_set(1, raw)
    print("v", ctl.sample("v"))
print("alarms", [(a["type"], a["field"]) for a in alarms.alarms], ctl.threshold_alarms)
print("cleared", alarms.cleared)
try:
    ctl.reconfigure({"v": {"source": "adc9", "rate_hz": 1}})
except ValueError as e:
    print("vetoed", e)
print("kept", list(ctl._fields))
