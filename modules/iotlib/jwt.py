# JSON Web Tokens, HS256 only: HMAC-SHA256 built by hand over hashlib (MicroPython has no
# hmac module). Anything but the configured algorithms, including "none", is refused.
import binascii
import hashlib
import json

_BLOCK = 64  # SHA-256 block size
_IPAD = bytes(0x36 for _ in range(_BLOCK))
_OPAD = bytes(0x5C for _ in range(_BLOCK))


class JWTError(ValueError):
    """reason is a short machine-readable word: malformed, algorithm, signature, expired, ..."""

    def __init__(self, reason, detail=""):
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason


def _to_bytes(value):
    return value.encode() if isinstance(value, str) else bytes(value)


def _xor(key, pad):
    return bytes(k ^ p for k, p in zip(key, pad))


def hmac_sha256(key, msg):
    key = _to_bytes(key)
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(_xor(key, _IPAD))
    inner.update(_to_bytes(msg))
    outer = hashlib.sha256(_xor(key, _OPAD))
    outer.update(inner.digest())
    return outer.digest()


def compare_digest(a, b):
    """Constant-time equality: the time taken does not depend on where a and b differ."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0


def b64url_encode(data):
    return binascii.b2a_base64(_to_bytes(data)).rstrip(b"\n").rstrip(b"=").replace(
        b"+", b"-").replace(b"/", b"_")


def b64url_decode(text):
    """Strict base64url without padding (RFC 7515): anything else is JWTError("malformed").

    a2b_base64 skips characters outside its alphabet and ignores the unused low bits of
    the last character, so many strings decode to the same bytes. Only the one canonical
    encoding is accepted: the decoded bytes must encode back to exactly `text`. That
    refuses stray characters, "+", "/", "=" and non-zero trailing bits, in C, with no
    per-character loop."""
    text = _to_bytes(text)
    std = text.replace(b"-", b"+").replace(b"_", b"/")
    try:
        data = binascii.a2b_base64(std + b"=" * (-len(std) % 4))
    except ValueError:
        raise JWTError("malformed", "bad base64")
    if b64url_encode(data) != text:
        raise JWTError("malformed", "not canonical base64url")
    return data


def encode(claims, key, alg="HS256"):
    if alg != "HS256":
        raise JWTError("algorithm", "only HS256 can sign")
    head = b64url_encode(json.dumps({"alg": alg, "typ": "JWT"}))
    body = b64url_encode(json.dumps(claims))
    signing_input = head + b"." + body
    return (signing_input + b"." + b64url_encode(hmac_sha256(key, signing_input))).decode()


def _json_part(part):
    try:
        value = json.loads(b64url_decode(part))
    except ValueError:
        raise JWTError("malformed", "bad JSON")
    if not isinstance(value, dict):
        raise JWTError("malformed", "not an object")
    return value


def _check_time(claims, now, leeway_s):
    for name in ("exp", "nbf", "iat"):
        if name in claims and (isinstance(claims[name], bool)
                               or not isinstance(claims[name], (int, float))):
            raise JWTError("malformed", name + " is not a number")
    if "exp" not in claims:
        raise JWTError("expired", "no exp claim")
    if now > claims["exp"] + leeway_s:
        raise JWTError("expired")
    if "nbf" in claims and now + leeway_s < claims["nbf"]:
        raise JWTError("not_yet_valid")
    if "iat" in claims and now + leeway_s < claims["iat"]:
        raise JWTError("not_yet_valid", "issued in the future")


def decode(token, key, now, algorithms=("HS256",), issuer=None, audience=None, leeway_s=30):
    """Verify and return the claims, or raise JWTError(reason)."""
    token = _to_bytes(token)
    parts = token.split(b".")
    if len(parts) != 3:
        raise JWTError("malformed", "needs three parts")
    header = _json_part(parts[0])
    alg = header.get("alg")
    # the header is attacker-controlled: only configured algorithms, never "none"
    if alg not in algorithms or alg != "HS256":
        raise JWTError("algorithm", str(alg))
    expected = hmac_sha256(key, parts[0] + b"." + parts[1])
    if not compare_digest(expected, b64url_decode(parts[2])):
        raise JWTError("signature")
    claims = _json_part(parts[1])
    _check_time(claims, now, leeway_s)
    if issuer is not None and claims.get("iss") != issuer:
        raise JWTError("issuer")
    if audience is not None:
        aud = claims.get("aud")
        if not (aud == audience or (isinstance(aud, list) and audience in aud)):
            raise JWTError("audience")
    return claims
