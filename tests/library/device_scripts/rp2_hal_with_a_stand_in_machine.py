# Run by tests/library/test_hal.py: iotlib.hal.rp2 on the unix build, machine a stand-in whose
# reset_cause() is ARGS["cause"] (the chip's PWRON_RESET 1 or WDT_RESET 3).
import json, os, sys
ARGS = json.loads(os.getenv("DEVICE_SCRIPT_ARGS"))
class machine:
    PWRON_RESET, WDT_RESET = 1, 3
    cause = ARGS["cause"]
    @staticmethod
    def reset_cause():
        return machine.cause
    @staticmethod
    def reset():
        print("machine.reset()")
        raise SystemExit(0)
sys.modules["machine"] = machine
from iotlib.hal import rp2
from iotlib.boot_counter import BootCounter
boot = BootCounter(hal=rp2)
boot.record_boot()
print("BOOT", boot.reset_cause)
