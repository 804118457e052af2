# Run by tests/roles/test_sensors.py.
import _iotlib
from sensors_controller import SensorsController
from iotlib.auth_manager import AuthManager
from iotlib.alarm_manager import AlarmManager

class State:
    def __init__(self): self.reported = []
    def report(self, values=None, **kw): self.reported.append(values)

alarms, state = AlarmManager(None, None, "d"), State()
ctl = SensorsController(fields={"a": {"source": "adc0", "rate_hz": 1, "threshold_high": 2.0},
                                "b": {"source": "adc1", "rate_hz": 1, "threshold_high": 2.0}},
                        auth=AuthManager("dk", api_key="k"), alarms=alarms, state=state)
_iotlib.sim_adc_set(0, 4000)
_iotlib.sim_adc_set(1, 4000)
for _ in range(3):
    ctl.sample("a"), ctl.sample("b")
print("both", alarms.active, len(alarms.pending))
_iotlib.sim_adc_set(0, 100)
ctl.sample("a"), ctl.sample("b")
print("a_back", alarms.active, [(c["type"], c["source"]) for c in alarms.cleared])
ctl.report_state()
print("state", sorted(state.reported[-1]["sensors"]["out_of_band"].items()),
      sorted(state.reported[-1]["sensors"]["fields"]))
ctl.reconfigure({"a": {"source": "adc0", "rate_hz": 1, "threshold_high": 2.0}})
print("b_gone", alarms.active, [(c["type"], c["source"]) for c in alarms.cleared])
for _ in range(3):
    ctl.sample("a")
print("quiet", alarms.active, len(alarms.cleared))
