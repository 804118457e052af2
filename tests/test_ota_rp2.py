"""OTA pieces on the emulated RP2040 (rp2040py, the CI image without Wi-Fi): the C verifier
over the image's own Mbed TLS, and a bundle unpacked into littlefs and imported ahead of
the frozen modules."""
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import run_rp2
from iot_sign import keygen, load_private_key, pack_bundle, sign_manifest
from iot_sign.signing import raw_public_key, statement


def test_verify_and_bundle_install_on_the_rp2040(tmp_path):
    keys = keygen(str(tmp_path / "k"))
    priv = load_private_key(keys["private.pem"])
    raw = raw_public_key(priv.public_key())
    blob = pack_bundle({"ota_app.py": b"VERSION = '1.1.0'\n", "pkg/__init__.py": b"X = 42\n"})
    m = sign_manifest(priv, "bundle", "1.1.0", None, blob)
    digest = hashlib.sha256(statement("bundle", "1.1.0", None, len(blob), m["sha256"])).digest()
    assert priv.public_key().verify(bytes.fromhex(m["signature"]),
                                    statement("bundle", "1.1.0", None, len(blob), m["sha256"]),
                                    ec.ECDSA(hashes.SHA256())) is None
    code = """
import _iotota, binascii, hashlib, os, sys, time
# littlefs is at / already: the image's frozen _boot.py mounts it
u = binascii.unhexlify
key, digest, sig, blob = u(%r), u(%r), u(%r), u(%r)
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
""" % (raw.hex(), digest.hex(), m["signature"], blob.hex())
    out = run_rp2("RELAYS", code)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["GOOD"].split()[0] == "True", out
    assert lines["BAD"] == "False", out
    assert lines["SHA"] == m["sha256"]
    assert lines["SLOT"] == "a" and lines["TRIAL"] == "True"
    assert lines["APP"] == "1.1.0 42"
    assert lines["COMMIT"] == "True 1.1.0"
