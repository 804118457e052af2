# Frozen into every image built from this repo: the library, the boot entry, asyncio, Microdot.
# The role controllers are added by the image's own manifest: one role per rp2 variant
# (boards/PICO_W_IOT/manifest_<VARIANT>.py), both in the unix simulation
# (firmware/unix-sim/manifest.py). Paths are relative to this file; nothing is
# require()d from micropython-lib.

include("$(MPY_DIR)/extmod/asyncio")

package("iotlib", base_path="modules")
module("iot_boot.py", base_path="modules")
module("main.py", base_path="modules")

# Microdot is installed from PyPI into build/vendor at build time (firmware/vendor_microdot.sh).
package(
    "microdot",
    files=("__init__.py", "microdot.py", "websocket.py", "helpers.py"),
    base_path="build/vendor",
)
