"""Host side of OTA signing: key pairs, bundle packing, manifests, verification.

The signed message is not the artefact itself but a one-line *statement*
binding the artefact's SHA-256 to its kind, version and minimum version, so a
signed old bundle cannot be relabelled as a newer one (see `statement()`).
The device rebuilds the same statement from the manifest and checks it with
`_iotota.verify_p256` (modules/iotlib/ota/policy.py, ota/manager.py).
"""
from .bundle import pack_bundle, unpack_bundle, BundleError  # noqa: F401
from .signing import (statement, sign_manifest, verify_manifest, keygen,  # noqa: F401
                      load_private_key, load_public_key, raw_public_key, VerifyError)
