# SENSORS image: the board's content and the sensor role only.
include("manifest.py")
module("sensors_controller.py", base_path="../../modules")
module("sensors_schema.py", base_path="../../modules")  # its config sections
package("iotlib", files=("websocket.py", "ws_stream.py"), base_path="../../modules")  # the stream
