# Unix simulation: the shared content and both roles (device.json picks one at start-up).
include("../../manifest.py")
module("relays_controller.py", base_path="../../modules")
module("relays_schema.py", base_path="../../modules")  # its config sections
module("sensors_controller.py", base_path="../../modules")
module("sensors_schema.py", base_path="../../modules")  # its config sections
package("iotlib", files=("daily_windows.py", "websocket.py", "ws_stream.py"), base_path="../../modules")
# what only the simulation runs on: its hal (iotlib.hal.unix) and its link
module("iotlib/hal/unix.py", base_path="../../modules")
module("iotlib/link_sim.py", base_path="../../modules")
