# What this device installs, and when: everything decided about an update before a byte is
# downloaded (fields, versions, size, signature), and the trial rules. No I/O here: the
# manager (iotlib.ota.manager) asks, then acts.
#
# Signed statement (must match tools/iot-sign, iot_sign/signing.py):
#   "iotota-v1\n<kind>\n<version>\n<min_version or empty>\n<size>\n<sha256 hex>"
# so a signature binds the artefact's hash to its version: an old bundle cannot be
# relabelled as a new one, and the version checks below act on signed data.
import binascii
import hashlib
import time

STATEMENT_TAG = "iotota-v1"
FIELDS = ("kind", "version", "size", "sha256", "signature", "url")


class Refused(Exception):
    """An update this device will not take; args: (reason, detail)."""


def version_key(v):
    try:
        return tuple(int(p) for p in v.split("."))
    except (AttributeError, ValueError):
        raise Refused("bad_manifest", "version %r is not dotted numeric" % (v,))


def statement(kind, version, min_version, size, sha256_hex):
    return "%s\n%s\n%s\n%s\n%d\n%s" % (STATEMENT_TAG, kind, version, min_version or "",
                                       size, sha256_hex)


def accept(m, current, on_trial, failed_version, limits, verify, key):
    """Raise Refused unless manifest m may be installed over version `current`.
    limits: the largest artefact per kind this build takes ({"bundle": n, "image": n}; a kind
    missing is not supported). verify(key, digest, sig) checks a P-256 signature."""
    for field in FIELDS:
        if field not in m:
            raise Refused("bad_manifest", "missing " + field)
    if on_trial:
        # the other slot holds the rollback target: never overwrite it during a trial
        raise Refused("on_trial", "commit or roll back the running bundle first")
    limit = limits.get(m["kind"])
    if limit is None:
        detail = "kind %r" % m["kind"]
        if m["kind"] == "image":
            detail = "kind 'image' (no image stage in this build)"
        raise Refused("unsupported_kind", detail)
    have, new = version_key(current), version_key(m["version"])
    if new <= have:
        raise Refused("downgrade", "%s is not newer than %s" % (m["version"], current))
    if m.get("min_version") and have < version_key(m["min_version"]):
        raise Refused("min_version", "needs %s, running %s" % (m["min_version"], current))
    if m["version"] == failed_version:
        raise Refused("rolled_back", "%s failed its trial on this device" % m["version"])
    if not isinstance(m["size"], int) or m["size"] <= 0 or m["size"] > limit:
        raise Refused("oversized", "size %r, limit %d" % (m["size"], limit))
    try:
        sig = binascii.unhexlify(m["signature"])
        digest = hashlib.sha256(statement(m["kind"], m["version"], m.get("min_version"),
                                          m["size"], m["sha256"])).digest()
        good = verify(key, digest, sig)
    except ValueError as e:  # not hex, or not a DER signature at all: unsigned
        raise Refused("unsigned", str(e))
    if not good:
        raise Refused("bad_signature", "signature does not match the trusted key")


def trial_left_s(deadline_s, booted_ms):
    """Seconds left before a trial that booted at booted_ms (time.ticks_ms()) and is not
    committed is given up: rolled back, or for an image reset unconfirmed (0: now)."""
    return max(0, deadline_s - time.ticks_diff(time.ticks_ms(), booted_ms) // 1000)
