"""`fleet-admin --url URL --token T <command>`: the same commands as HTTP calls to the admin API.

The token is an API token (from `fleet-admin --db ... token` at bootstrap, or `token` here later);
its tenant and namespace are where every command acts.
"""

from __future__ import annotations

import base64
import json

import httpx
import jwt


class HttpCliError(Exception):
    """The server refused: one line with status, error code and detail."""


class Admin:
    def __init__(self, url: str, token: str):
        if not token:
            raise HttpCliError("--url needs --token (or FLEET_TOKEN)")
        try:
            self.claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise HttpCliError(f"--token is not a JWT: {exc}")
        self.http = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                                 timeout=30)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw):
        try:
            res = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise HttpCliError(f"{method} {path}: {type(exc).__name__}: {exc}")
        if res.status_code >= 400:
            try:
                body = res.json()
                reason = f"{body.get('error')}: {body.get('detail')}"
            except ValueError:
                reason = res.text.strip()[:200]
            raise HttpCliError(f"{res.status_code} {reason}")
        return res.json() if res.content else {}

    def check_scope(self, a) -> None:
        """--tenant/--namespace, when given, must be the token's: the server acts in the token's scope."""
        for name in ("tenant", "namespace"):
            given = getattr(a, name, None)
            if given is not None and given != self.claims.get(name):
                raise HttpCliError(f"--{name} {given!r} differs from the token's {self.claims.get(name)!r}")

    def state_path(self, device_id: str) -> str:
        return f"/api/tenants/{self.claims['tenant']}/namespaces/{self.claims['namespace']}/devices/{device_id}/state"


def _json_file(path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise HttpCliError(f"{path}: {exc}")


# ---- commands: each takes (admin, args) and returns what to print --------------------------

def provision(c: Admin, a):
    c.check_scope(a)
    return c.call("POST", "/api/admin/devices", json={"id": a.id, "role": a.role})


def deprovision(c: Admin, a):
    return c.call("DELETE", f"/api/admin/devices/{a.id}")


def devices(c: Admin, a):
    params = {"limit": a.limit, "offset": a.offset}
    if a.role:
        params["role"] = a.role
    if a.online is not None:
        params["online"] = a.online
    return c.call("GET", "/api/admin/devices", params=params)


def config_set(c: Admin, a):
    return c.call("PUT", f"/api/admin/devices/{a.id}/config", json=_json_file(a.file))


def config_get(c: Admin, a):
    return dict(c.call("GET", f"/api/devices/{a.id}/config"), device_id=a.id)


def state_get(c: Admin, a):
    return dict(c.call("GET", c.state_path(a.id)), device_id=a.id)


def state_set_desired(c: Admin, a):
    return dict(c.call("PUT", c.state_path(a.id) + "/desired", json={"desired": _json_file(a.file)}), device_id=a.id)


def alarms(c: Admin, a):
    out = c.call("GET", "/api/alarms", params={"device_id": a.id})
    return {"alarms": out["alarms"], "dropped": out["dropped"].get(a.id, 0)}


def heartbeat(c: Admin, a):
    return {"device_id": a.id, "inventory": c.call("GET", f"/api/admin/devices/{a.id}")}


def action(c: Admin, a):
    return c.call("POST", f"/api/admin/devices/{a.id}/actions", json={"action": a.action})


def token(c: Admin, a):
    c.check_scope(a)
    body = {"role": a.role, "ttl_s": a.ttl}
    if a.sub:
        body["sub"] = a.sub
    return c.call("POST", "/api/admin/tokens", json=body)


def publish(c: Admin, a):
    c.check_scope(a)
    try:
        with open(a.file, "rb") as fh:
            data = base64.b64encode(fh.read()).decode()
    except OSError as exc:
        raise HttpCliError(f"{a.file}: {exc}")
    return c.call("POST", "/api/admin/artifacts", json={"manifest": _json_file(a.manifest), "data_base64": data})


def role_set(c: Admin, a):
    c.check_scope(a)
    return c.call("PUT", f"/api/admin/tenant/roles/{a.role}", json={"permissions": a.permissions})


def alarm_ack(c: Admin, a):
    return c.call("POST", "/api/admin/alarms/acknowledge", json={"device_id": a.id, "type": a.type, "source": a.source})


def alarm_clear(c: Admin, a):
    return c.call("POST", "/api/admin/alarms/clear", json={"device_id": a.id, "type": a.type, "source": a.source})


def audit(c: Admin, a):
    params = {"limit": a.limit}
    if a.action:
        params["action"] = a.action
    return c.call("GET", "/api/admin/audit", params=params)


def rotate_device_key(c: Admin, a):
    return c.call("POST", f"/api/admin/devices/{a.id}/key", json={"grace_s": a.grace})


def rotate_tenant_key(c: Admin, a):
    c.check_scope(a)
    return c.call("POST", "/api/admin/tenant/api-key", json={"grace_s": a.grace})


def secrets_audit(c: Admin, a):
    params = {"limit": a.limit}
    if a.subject:
        params["subject"] = a.subject
    return c.call("GET", "/api/admin/secrets/audit", params=params)
