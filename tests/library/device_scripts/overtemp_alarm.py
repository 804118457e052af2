# Run by tests/library/test_alarm_manager.py after the prelude; ARGS: the temperatures to sample, run (the role then runs a while).
import _iotlib, json, os
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
from iotlib.registration import Registration
from sensors_controller import SensorsController
reg = Registration(SD, auth, DEVICE, role="sensors")
alarms = AlarmManager(None, auth, DEVICE, store=store, log=log, autostart=False)  # flushed here
ctl = SensorsController(device_id=DEVICE, auth=auth, alarms=alarms,
                        fields={"cpu": {"source": "temp", "rate_hz": 20, "threshold_high": 50}})
def temperature(c):      # the simulated chip's sensor: 0.706 V at 27 C, -1.721 mV per degree
    _iotlib.sim_adc_set(4, round((0.706 - (c - 27) * 0.001721) / 3.3 * 4096))
async def main():
    await reg.register()
    alarms.url = reg.service("alarms")
    for c in ARGS["temperatures"]:
        temperature(c)
        print("SAMPLE", round(ctl.sample("cpu")))
    print("FLUSHED", await alarms.flush(), alarms.active, alarms.cleared)
    if ARGS["run"]:                               # sampled by the running role for a while
        await ctl.start()
        await asyncio.sleep_ms(500)
        print("RUNNING", ctl.samples > 5, alarms.active,
              [(c["type"], c["source"]) for c in alarms.cleared])
        print("FLUSHED", await alarms.flush(), alarms.active, alarms.cleared)
asyncio.run(main())
