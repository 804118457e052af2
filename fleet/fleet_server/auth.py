"""Device proofs, device tokens (server secret) and API-caller tokens (tenant API key)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

import jwt

from .api_error import ApiError

DEFAULT_ROLES: dict[str, list[str]] = {
    "admin": ["relays:read", "relays:write", "sensors:read", "ota:admin", "state:write", "alarms:read",
              "alarms:write", "devices:read", "devices:admin", "config:write", "tenant:admin", "audit:read"],
    "operator": ["relays:read", "relays:write", "sensors:read", "state:write", "alarms:read", "alarms:write",
                 "devices:read"],
    "viewer": ["relays:read", "sensors:read", "devices:read"],
}
API_ISSUER = "fleet"
API_AUDIENCE = "iotlib"


def new_key() -> str:
    """32 random bytes as hex: device keys, tenant API keys, the server secret."""
    return secrets.token_hex(32)


# ---- device proof ---------------------------------------------------------------

def device_proof(device_key: str, nonce: str, device_id: str) -> str:
    """hex(HMAC-SHA256(device_key, nonce + ":" + id)); the key is the hex string's UTF-8 bytes."""
    return hmac.new(device_key.encode(), f"{nonce}:{device_id}".encode(), hashlib.sha256).hexdigest()


def proof_matches(device_key: str, nonce: str, device_id: str, proof: str) -> bool:
    return hmac.compare_digest(device_proof(device_key, nonce, device_id), proof.lower())


def proof_matches_any(device_keys: list[str], nonce: str, device_id: str, proof: str) -> bool:
    """The current key, or the previous one during its rotation grace period."""
    return any([proof_matches(k, nonce, device_id, proof) for k in device_keys])


# ---- tokens ------------------------------------------------------------------------

def mint_device_token(secret: str, device: dict, ttl_s: int) -> tuple[str, int]:
    now = int(time.time())
    exp = now + ttl_s
    claims = {"sub": device["id"], "tenant": device["tenant"], "namespace": device["namespace"],
              "typ": "device", "iat": now, "exp": exp}
    return jwt.encode(claims, secret, algorithm="HS256"), exp


def mint_api_token(tenant: dict, namespace: str, role: str, sub: str, ttl_s: int) -> str:
    """An API-caller JWT signed with the tenant's API key; permissions resolved from its role table now."""
    roles = tenant["roles"]
    if role not in roles:
        raise ValueError(f"unknown role {role!r} for tenant {tenant['tenant']!r} (known: {sorted(roles)})")
    now = int(time.time())
    claims = {"sub": sub, "tenant": tenant["tenant"], "namespace": namespace, "role": role,
              "permissions": list(roles[role]), "iss": API_ISSUER, "aud": API_AUDIENCE,
              "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, tenant["api_key"], algorithm="HS256")


@dataclass
class Principal:
    kind: str  # "device" or "api"
    sub: str
    tenant: str
    namespace: str
    permissions: list[str] = field(default_factory=list)


def verify_bearer(token: str, server_secret: str, get_tenant) -> Principal:
    """Check a bearer token of either kind; any failure is a 401."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ApiError(401, "malformed token")
    try:
        if unverified.get("typ") == "device":
            claims = jwt.decode(token, server_secret, algorithms=["HS256"],
                                options={"require": ["exp", "sub", "tenant", "namespace"]})
            return Principal("device", claims["sub"], claims["tenant"], claims["namespace"])
        tenant = get_tenant(str(unverified.get("tenant", "")))
        if tenant is None:
            raise ApiError(401, "token names an unknown tenant")
        claims = _decode_with_any(token, tenant.get("api_keys") or [tenant["api_key"]])
        return Principal("api", claims["sub"], claims["tenant"], claims["namespace"],
                         granted_permissions(tenant["roles"], claims))
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "token expired")
    except jwt.PyJWTError as exc:
        raise ApiError(401, f"invalid token: {exc}")


def _decode_with_any(token: str, keys: list[str]) -> dict:
    """Verify with the tenant's current key, or the previous one during its rotation grace period."""
    for key in keys[:-1]:
        try:
            return _decode_api(token, key)
        except jwt.InvalidSignatureError:
            continue
    return _decode_api(token, keys[-1])


def _decode_api(token: str, key: str) -> dict:
    return jwt.decode(token, key, algorithms=["HS256"], audience=API_AUDIENCE, issuer=API_ISSUER,
                      options={"require": ["exp", "sub", "tenant", "namespace"]})


# ---- access rules -------------------------------------------------------------------

def granted_permissions(roles: dict[str, list[str]], claims: dict) -> list[str]:
    """What the token's role grants in the tenant's current role table, narrowed by its
    `permissions` claim when it has one: the claim can take permissions away, never add
    them (the device applies the same rule). An unknown role grants nothing."""
    granted = list(roles.get(str(claims.get("role")), []))
    narrowed = claims.get("permissions")
    if isinstance(narrowed, list):
        granted = [p for p in granted if p in narrowed]
    return granted


def check_device_access(who: Principal, device: dict) -> None:
    """A device touches only itself; an API caller only devices of its tenant and namespace."""
    if who.kind == "device" and who.sub != device["id"]:
        raise ApiError(403, "a device may only access its own resources")
    if who.tenant != device["tenant"] or who.namespace != device["namespace"]:
        raise ApiError(403, "tenant/namespace mismatch")


def check_permission(who: Principal, permission: str) -> None:
    if who.kind != "api":
        raise ApiError(403, f"an API token with {permission!r} is required")
    if permission not in who.permissions:
        raise ApiError(403, f"permission {permission!r} missing")
