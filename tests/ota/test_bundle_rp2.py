"""OTA pieces on the emulated RP2040 (rp2040py, the CI image without Wi-Fi): the C verifier
over the image's own Mbed TLS, and a bundle unpacked into littlefs and imported ahead of
the frozen modules."""
import hashlib

import pytest

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from harness.run import run_rp2
from harness.scripts import device_script, with_args
from iot_sign import keygen, load_private_key, pack_bundle, sign_manifest
from iot_sign.signing import raw_public_key, statement

pytestmark = pytest.mark.rp2


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
    code = with_args(device_script(__file__, "verify_and_install_bundle_rp2.py"), key=raw.hex(),
                     digest=digest.hex(), sig=m["signature"], blob=blob.hex())
    out = run_rp2("RELAYS", code)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["GOOD"].split()[0] == "True", out
    assert lines["BAD"] == "False", out
    assert lines["SHA"] == m["sha256"]
    assert lines["SLOT"] == "a" and lines["TRIAL"] == "True"
    assert lines["APP"] == "1.1.0 42"
    assert lines["COMMIT"] == "True 1.1.0"
