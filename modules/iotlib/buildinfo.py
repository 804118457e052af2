# What this image is: firmware version, variant (role), MicroPython version, backend.
import sys

try:
    from _iotlib import build_info as _native_build_info
except ImportError:  # stock MicroPython without our C module
    _native_build_info = None


def build_info():
    if _native_build_info is not None:
        info = _native_build_info()
    else:
        info = {"version": "0.1.0", "variant": "NONE", "backend": "python", "wireless": False,
                "micropython": ".".join(str(n) for n in sys.implementation.version[:3])}
    return info
