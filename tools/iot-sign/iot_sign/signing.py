"""ECDSA P-256 / SHA-256 keys, statements and manifest signatures."""
import hashlib
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

STATEMENT_TAG = "iotota-v1"


class VerifyError(Exception):
    pass


def statement(kind: str, version: str, min_version: str | None, size: int, sha256_hex: str) -> bytes:
    """The exact bytes that are signed. The device builds the same line (iotlib.ota.policy.statement)."""
    return ("%s\n%s\n%s\n%s\n%d\n%s" % (STATEMENT_TAG, kind, version, min_version or "",
                                        size, sha256_hex)).encode()


def keygen(out_dir: str) -> dict:
    """Write private.pem (keep secret), public.der, public.raw and ota_key.py into out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    paths = {n: os.path.join(out_dir, n) for n in ("private.pem", "public.der", "public.raw", "ota_key.py")}
    fd = os.open(paths["private.pem"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = key.public_key()
    with open(paths["public.der"], "wb") as fh:
        fh.write(pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    raw = raw_public_key(pub)
    with open(paths["public.raw"], "wb") as fh:
        fh.write(raw)
    with open(paths["ota_key.py"], "w") as fh:
        fh.write(python_key_module(raw))
    return paths


def python_key_module(raw: bytes, note: str = "") -> str:
    return ('"""The OTA public key this image trusts (P-256, raw uncompressed point).%s"""\n'
            "from binascii import unhexlify\n\nPUBLIC_KEY = unhexlify(\n    %r\n)\n" % (note, raw.hex()))


def raw_public_key(pub) -> bytes:
    return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def load_private_key(path: str):
    with open(path, "rb") as fh:
        key = serialization.load_pem_private_key(fh.read(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path}: not a P-256 private key")
    return key


def load_public_key(path: str):
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) == 65 and data[0] == 4:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    if data.startswith(b"-----BEGIN PUBLIC KEY"):
        return serialization.load_pem_public_key(data)
    if data.startswith(b"-----BEGIN"):
        return load_private_key(path).public_key()
    return serialization.load_der_public_key(data)


def sign_manifest(key, kind: str, version: str, min_version: str | None, artefact: bytes) -> dict:
    """The manifest `fleet-admin publish` takes: kind, version, size, sha256, signature (hex DER)."""
    digest = hashlib.sha256(artefact).hexdigest()
    sig = key.sign(statement(kind, version, min_version, len(artefact), digest), ec.ECDSA(hashes.SHA256()))
    manifest = {"kind": kind, "version": version, "size": len(artefact), "sha256": digest,
                "signature": sig.hex()}
    if min_version:
        manifest["min_version"] = min_version
    return manifest


def verify_manifest(pub, manifest: dict, artefact: bytes) -> None:
    """Raise VerifyError unless artefact matches manifest and the signature is good."""
    if len(artefact) != manifest["size"]:
        raise VerifyError("size mismatch: manifest %d, file %d" % (manifest["size"], len(artefact)))
    digest = hashlib.sha256(artefact).hexdigest()
    if digest != manifest["sha256"]:
        raise VerifyError("sha256 mismatch")
    try:
        sig = bytes.fromhex(manifest["signature"])
        pub.verify(sig, statement(manifest["kind"], manifest["version"], manifest.get("min_version"),
                                  manifest["size"], digest), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise VerifyError("bad signature") from exc
