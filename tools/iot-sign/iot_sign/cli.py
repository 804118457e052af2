"""iot-sign: key pairs, signed application bundles, verification.

  iot-sign keygen --out DIR
  iot-sign bundle --key private.pem --version V [--min-version M] --out F [--no-compress] SRC...
  iot-sign verify --pub public.der|public.raw --manifest F.json F
"""
import argparse
import json
import os
import sys

from .bundle import pack_bundle, BundleError
from .signing import keygen, load_private_key, load_public_key, sign_manifest, verify_manifest, VerifyError

SUFFIXES = (".mpy", ".py")


def collect(sources):
    """Map bundle names to bytes: files by basename, folders recursively by relative path."""
    files = {}
    for src in sources:
        if os.path.isdir(src):
            for base, dirs, names in os.walk(src):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for n in sorted(names):
                    if n.endswith(SUFFIXES):
                        path = os.path.join(base, n)
                        files[os.path.relpath(path, src).replace(os.sep, "/")] = _read(path)
        elif src.endswith(SUFFIXES):
            files[os.path.basename(src)] = _read(src)
        else:
            raise SystemExit(f"iot-sign: error: {src}: only .mpy and .py files go into a bundle")
    if not files:
        raise SystemExit("iot-sign: error: no .mpy or .py files to bundle")
    return files


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def main(argv=None):
    p = argparse.ArgumentParser(prog="iot-sign", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="new P-256 key pair")
    k.add_argument("--out", required=True)
    b = sub.add_parser("bundle", help="pack and sign an application bundle")
    b.add_argument("--key", required=True)
    b.add_argument("--version", required=True)
    b.add_argument("--min-version")
    b.add_argument("--out", required=True, help="bundle file; the manifest goes to OUT.json")
    b.add_argument("--no-compress", action="store_true")
    b.add_argument("sources", nargs="+")
    v = sub.add_parser("verify", help="check a file against its signed manifest")
    v.add_argument("--pub", required=True)
    v.add_argument("--manifest", required=True)
    v.add_argument("file")
    a = p.parse_args(argv)
    try:
        if a.cmd == "keygen":
            print(json.dumps(keygen(a.out), indent=1))
        elif a.cmd == "bundle":
            blob = pack_bundle(collect(a.sources), compress=not a.no_compress)
            manifest = sign_manifest(load_private_key(a.key), "bundle", a.version, a.min_version, blob)
            with open(a.out, "wb") as fh:
                fh.write(blob)
            with open(a.out + ".json", "w") as fh:
                json.dump(manifest, fh, indent=1)
            print(json.dumps(manifest))
        else:
            with open(a.manifest) as fh:
                manifest = json.load(fh)
            verify_manifest(load_public_key(a.pub), manifest, _read(a.file))
            print("ok")
    except (VerifyError, BundleError, ValueError, OSError) as exc:
        print(f"iot-sign: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
