"""The loader's builds and the Wi-Fi images the OTA image tests swap."""
import subprocess
import sys

import pytest

from harness.run import BUILD, ROOT

sys.path.insert(0, str(ROOT / "firmware"))
import pack_image as P  # noqa: E402


def build_loader():
    """The loader build of the superbuild (IOTLIB_LOADER=ON), else a private one (~20 s)."""
    sup = BUILD / "rp2" / "loader"
    if (sup / "iot_loader.bin").exists() and (sup / "testapp_v2.bin").exists():
        return sup
    out = BUILD / "loader-tests"
    deps = dict(line.split("=", 1) for line in subprocess.run(
        [str(ROOT / "firmware" / "fetch_deps.sh")], capture_output=True, text=True, check=True
    ).stdout.splitlines() if "=" in line)
    subprocess.run(["cmake", "-S", str(ROOT / "firmware" / "loader"), "-B", str(out),
                    "-DPICO_SDK_PATH=" + deps["PICO_SDK_PATH"], "-DMICROPY_DIR=" + deps["MICROPY_DIR"]],
                   check=True, capture_output=True)
    proc = subprocess.run(["cmake", "--build", str(out), "-j2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def wifi_images():
    out = {}
    for name, path in (("loader", BUILD / "rp2" / "loader" / "iot_loader.bin"),
                       ("RELAYS", BUILD / "rp2" / "RELAYS" / "firmware.bin"),
                       ("SENSORS", BUILD / "rp2" / "SENSORS" / "firmware.bin")):
        if not path.exists():
            pytest.fail("%s is missing: build the Wi-Fi images with `firmware/build.sh rp2`" % path)
        out[name] = path.read_bytes()
    return out


def wifi_swap_start(img):
    """The flash before the swap: RELAYS in the factory flash, the Wi-Fi SENSORS image staged
    as version 9.0.0; (flash, the staged file's bytes)."""
    start = P.factory_flash(img["loader"], img["RELAYS"])
    return start, P.stage(start, img["SENSORS"], "9.0.0")
