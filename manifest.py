# Frozen into every image built from this repo (rp2 variants and the unix simulation).
# Paths are relative to this file. Nothing is require()d from micropython-lib.

include("$(MPY_DIR)/extmod/asyncio")

package("iotlib", base_path="modules")
module("relays_controller.py", base_path="modules")
module("sensors_controller.py", base_path="modules")
module("iot_boot.py", base_path="modules")
module("main.py", base_path="modules")

# Microdot is installed from PyPI into build/vendor at build time (firmware/vendor_microdot.sh).
package(
    "microdot",
    files=("__init__.py", "microdot.py", "websocket.py", "helpers.py"),
    base_path="build/vendor",
)
