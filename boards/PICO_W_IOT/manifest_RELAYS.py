# RELAYS image: the board's content and the relay role only.
include("manifest.py")
module("relays_controller.py", base_path="../../modules")
