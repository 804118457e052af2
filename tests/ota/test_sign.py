"""Host side of OTA signing (tools/iot-sign): keys, bundles, manifests; tampering refused."""
import json
import pathlib
import subprocess
import sys

import pytest

from harness.run import ROOT
from iot_sign import (BundleError, VerifyError, keygen, load_private_key, load_public_key,
                      pack_bundle, sign_manifest, unpack_bundle, verify_manifest)

IOT_SIGN = [sys.executable, "-m", "iot_sign.cli"]


def cli(*args):
    return subprocess.run(IOT_SIGN + [str(a) for a in args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def keys(tmp_path):
    return keygen(str(tmp_path / "keys"))


@pytest.fixture
def app(tmp_path):
    src = tmp_path / "app"
    (src / "pkg").mkdir(parents=True)
    (src / "ota_app.py").write_text("VERSION = '1.1.0'\n")
    (src / "pkg" / "__init__.py").write_text("")
    (src / "pkg" / "mod.mpy").write_bytes(b"M\x06\x00\x1f" + bytes(range(200)))
    (src / "notes.txt").write_text("not bundled")
    return src


@pytest.mark.host
def test_keygen_writes_private_pem_and_both_public_forms(keys):
    pem = pathlib.Path(keys["private.pem"])
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert pem.stat().st_mode & 0o077 == 0, "private key readable by others"
    raw = pathlib.Path(keys["public.raw"]).read_bytes()
    assert len(raw) == 65 and raw[0] == 4
    der = pathlib.Path(keys["public.der"]).read_bytes()
    assert der.endswith(raw) and len(der) == 91
    assert raw.hex() in pathlib.Path(keys["ota_key.py"]).read_text()


@pytest.mark.host
def test_bundle_roundtrip_keeps_only_code_files(app):
    from iot_sign.cli import collect
    files = collect([str(app)])
    assert sorted(files) == ["ota_app.py", "pkg/__init__.py", "pkg/mod.mpy"]
    for compress in (True, False):
        assert unpack_bundle(pack_bundle(files, compress=compress)) == files


@pytest.mark.host
@pytest.mark.parametrize("name", ["/abs.py", "../up.py", "a//b.py", "a/./b.py", ""])
def test_bundle_refuses_unsafe_names(name):
    with pytest.raises(BundleError):
        pack_bundle({name: b"x"})


@pytest.mark.host
def test_cli_bundle_then_verify_ok(tmp_path, keys, app):
    out = tmp_path / "app.bundle"
    r = cli("bundle", "--key", keys["private.pem"], "--version", "1.1.0", "--min-version", "1.0.0",
            "--out", out, app)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "app.bundle.json").read_text())
    assert set(manifest) == {"kind", "version", "size", "sha256", "signature", "min_version"}
    assert manifest["kind"] == "bundle" and manifest["size"] == out.stat().st_size
    for pub in ("public.der", "public.raw"):
        r = cli("verify", "--pub", keys[pub], "--manifest", str(out) + ".json", out)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.host
def test_tampered_bytes_are_refused(tmp_path, keys, app):
    out = tmp_path / "app.bundle"
    assert cli("bundle", "--key", keys["private.pem"], "--version", "1.1.0", "--out", out, app).returncode == 0
    blob = bytearray(out.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    out.write_bytes(blob)
    r = cli("verify", "--pub", keys["public.der"], "--manifest", str(out) + ".json", out)
    assert r.returncode == 1 and "sha256 mismatch" in r.stderr
    # re-hashing the tampered file into the manifest does not help: the signature covers the hash
    import hashlib
    m = json.loads((tmp_path / "app.bundle.json").read_text())
    m["sha256"] = hashlib.sha256(bytes(blob)).hexdigest()
    with pytest.raises(VerifyError, match="bad signature"):
        verify_manifest(load_public_key(keys["public.der"]), m, bytes(blob))


@pytest.mark.host
def test_wrong_key_is_refused(tmp_path, keys, app):
    other = keygen(str(tmp_path / "other"))
    out = tmp_path / "app.bundle"
    assert cli("bundle", "--key", other["private.pem"], "--version", "1.1.0", "--out", out, app).returncode == 0
    r = cli("verify", "--pub", keys["public.raw"], "--manifest", str(out) + ".json", out)
    assert r.returncode == 1 and "bad signature" in r.stderr


@pytest.mark.host
@pytest.mark.parametrize("field,value", [("version", "9.9.9"), ("min_version", "0.1"), ("kind", "image")])
def test_relabelled_manifest_is_refused(keys, field, value):
    """The signature covers kind, version and min_version, not only the bytes."""
    blob = pack_bundle({"ota_app.py": b"VERSION = '1.1.0'\n"})
    m = sign_manifest(load_private_key(keys["private.pem"]), "bundle", "1.1.0", "1.0.0", blob)
    verify_manifest(load_public_key(keys["public.raw"]), m, blob)
    m[field] = value
    with pytest.raises(VerifyError):
        verify_manifest(load_public_key(keys["public.raw"]), m, blob)


@pytest.mark.host
def test_cli_refuses_non_code_files(tmp_path, keys):
    (tmp_path / "x.txt").write_text("x")
    r = cli("bundle", "--key", keys["private.pem"], "--version", "1.1.0", "--out", tmp_path / "b",
            tmp_path / "x.txt")
    assert r.returncode != 0 and "only .mpy and .py" in r.stderr


@pytest.mark.unix
def test_device_dev_key_is_the_committed_dev_key_pair():
    # The key frozen into the image we built (the default build trusts the dev key).
    from harness.run import run_unix
    raw = (ROOT / "tools/iot-sign/dev-key/public.raw").read_bytes()
    frozen = run_unix("from iotlib.ota_key import PUBLIC_KEY\nprint(PUBLIC_KEY.hex())").strip()
    assert frozen == raw.hex()
    pub = load_private_key(str(ROOT / "tools/iot-sign/dev-key/private.pem")).public_key()
    from iot_sign.signing import raw_public_key
    assert raw_public_key(pub) == raw
