# Unix simulation: the shared content and both roles (device.json picks one at start-up).
include("../../manifest.py")
module("relays_controller.py", base_path="../../modules")
module("sensors_controller.py", base_path="../../modules")
