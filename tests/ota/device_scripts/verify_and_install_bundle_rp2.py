# Run by tests/ota/test_bundle_rp2.py; ARGS (hex): the public key, the statement's digest, the
# signature, the bundle.
import _iotota, binascii, hashlib, os, sys, time
# littlefs is at / already: the image's frozen _boot.py mounts it
u = binascii.unhexlify
key, digest, sig, blob = u(ARGS["key"]), u(ARGS["digest"]), u(ARGS["sig"]), u(ARGS["blob"])
t = time.ticks_ms()
print("GOOD", _iotota.verify_p256(key, digest, sig), time.ticks_diff(time.ticks_ms(), t))
bad = bytearray(digest); bad[0] ^= 1
print("BAD", _iotota.verify_p256(key, bytes(bad), sig))
print("SHA", binascii.hexlify(hashlib.sha256(blob).digest()).decode())
from iotlib.ota.bundle import BundleStore
s = BundleStore("/ota_t")
with open("/dl.bin", "wb") as f:
    f.write(blob)
print("SLOT", s.install("/dl.bin", "1.1.0"))
s2 = BundleStore("/ota_t")
print("TRIAL", s2.boot()["trial"])
import ota_app, pkg
print("APP", ota_app.VERSION, pkg.X)
print("COMMIT", s2.commit(), s2.state()["active_version"])
