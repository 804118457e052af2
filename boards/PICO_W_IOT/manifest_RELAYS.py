# RELAYS image: the board's content and the relay role only.
include("manifest.py")
module("relays_controller.py", base_path="../../modules")
module("relays_schema.py", base_path="../../modules")  # its config sections
package("iotlib", files=("daily_windows.py",), base_path="../../modules")  # relay schedules
