"""Admin operations, shared by the HTTP admin API and `fleet-admin --db` (bootstrap).

Each takes the storage and a Scope (tenant, namespace, actor), enforces the tenant/namespace rules,
writes one audit entry and returns what the caller prints or answers. Errors are ApiError.
"""

from __future__ import annotations

import math
import re

from pydantic import ValidationError

from .api_error import ApiError, validation_detail
from .audit import Scope, record
from .auth import DEFAULT_ROLES, mint_api_token, new_key
from .device_config import validate_config
from .storage import AlreadyExists, NotFound, StaleVersion
from .update_manifest import PublishManifest, artifact_name, check_file_matches

DEVICE_ROLES = ("relays", "sensors")
ACTIONS = ("reboot", "refresh_token", "check_update")
PERMISSION_PATTERN = r"^[a-z]+:[a-z]+$"
MAX_GRACE_S = 30 * 24 * 3600  # the longest a rotated-out key may stay accepted
DEVICE_KEY_GRACE_S = 86400  # default: a day to give the device its new key


def scoped_device(store, scope: Scope, device_id: str) -> dict:
    device = store.get_device(device_id)
    if device is None:
        raise ApiError(404, f"unknown device {device_id!r}")
    if device["tenant"] != scope.tenant or device["namespace"] != scope.namespace:
        raise ApiError(403, "device is bound to another tenant/namespace")
    return device


def device_scope(store, device_id: str, actor: str) -> Scope:
    """The bootstrap CLI acts on a device wherever it is bound."""
    device = store.get_device(device_id)
    if device is None:
        raise ApiError(404, f"unknown device {device_id!r}")
    return Scope(device["tenant"], device["namespace"], actor)


def provision(store, scope: Scope, device_id: str, role: str) -> dict:
    if role not in DEVICE_ROLES:
        raise ApiError(400, f"role: must be one of {', '.join(DEVICE_ROLES)}")
    tenant = store.ensure_tenant(scope.tenant, new_key(), DEFAULT_ROLES)
    device_key = new_key()
    try:
        store.create_device({"id": device_id, "tenant": scope.tenant, "namespace": scope.namespace,
                             "role": role, "device_key": device_key})
    except AlreadyExists:
        raise ApiError(409, f"device {device_id!r} is already provisioned")
    record(store, scope.tenant, scope.actor, "device.provision", device_id, namespace=scope.namespace, role=role)
    return {"device_id": device_id, "device_key": device_key, "tenant": scope.tenant,
            "namespace": scope.namespace, "api_key": tenant["api_key"], "role": role}


def deprovision(store, scope: Scope, device_id: str) -> dict:
    scoped_device(store, scope, device_id)
    store.delete_device(device_id)
    record(store, scope.tenant, scope.actor, "device.deprovision", device_id)
    return {"device_id": device_id, "deprovisioned": True}


def set_config(store, scope: Scope, device_id: str, raw: object) -> dict:
    scoped_device(store, scope, device_id)
    try:
        config = validate_config(raw)
    except ValidationError as exc:
        raise ApiError(400, f"invalid config: {validation_detail(exc.errors())}")
    version = store.put_config(device_id, config)
    record(store, scope.tenant, scope.actor, "config.set", device_id, version=version)
    return {"device_id": device_id, "version": version}


def set_desired(store, scope: Scope, device_id: str, desired: object, expected: int | None = None) -> dict:
    scoped_device(store, scope, device_id)
    if not isinstance(desired, dict):
        raise ApiError(400, "desired: must be a JSON object")
    try:
        version = store.put_desired(device_id, desired, expected)
    except StaleVersion as exc:
        raise ApiError(409, f"stale version; current version is {exc.current}", version=exc.current)
    record(store, scope.tenant, scope.actor, "state.desired", device_id, desired_version=version, desired=desired)
    return dict(store.get_state(device_id), device_id=device_id)


def merge_desired(store, scope: Scope, device_id: str, section: str, key: str, value) -> dict:
    """Change one entry of the desired state (a console switch), keeping the rest."""
    scoped_device(store, scope, device_id)
    state = store.get_state(device_id)
    desired = dict(state["desired"])
    desired[section] = dict(desired.get(section) or {}, **{key: value})
    return set_desired(store, scope, device_id, desired, state["desired_version"])


def queue_action(store, scope: Scope, device_id: str, action: str) -> dict:
    if action not in ACTIONS:
        raise ApiError(400, f"action: must be one of {', '.join(ACTIONS)}")
    scoped_device(store, scope, device_id)
    store.queue_action(device_id, action)
    record(store, scope.tenant, scope.actor, "device.action", device_id, action=action)
    return {"device_id": device_id, "queued": action}


def mint_token(store, scope: Scope, role: str, ttl: int, sub: str | None) -> dict:
    tenant = store.get_tenant(scope.tenant)
    if tenant is None:
        raise ApiError(404, f"unknown tenant {scope.tenant!r} (provision a device first)")
    if ttl < 1:
        raise ApiError(400, "ttl: must be >= 1")
    try:
        token = mint_api_token(tenant, scope.namespace, role, sub or role, ttl)
    except ValueError as exc:
        raise ApiError(400, str(exc))
    record(store, scope.tenant, scope.actor, "token.mint", sub or role, role=role, namespace=scope.namespace,
           ttl=ttl)
    return {"token": token}


def publish(store, scope: Scope, raw_manifest: object, data: bytes) -> dict:
    if store.get_tenant(scope.tenant) is None:
        raise ApiError(404, f"unknown tenant {scope.tenant!r}")
    try:
        manifest = PublishManifest.model_validate(raw_manifest)
    except ValidationError as exc:
        raise ApiError(400, f"invalid manifest: {validation_detail(exc.errors())}")
    try:
        check_file_matches(manifest, data)
    except ValueError as exc:
        raise ApiError(400, f"manifest does not match file: {exc}")
    name = artifact_name(scope.tenant, manifest)
    fields = manifest.model_dump(exclude_none=True)
    try:
        store.put_artifact(name, scope.tenant, fields, data)
    except AlreadyExists:
        raise ApiError(409, f"artefact {name!r} is already published")
    record(store, scope.tenant, scope.actor, "update.publish", name, version=manifest.version, kind=manifest.kind)
    return {"name": name, "tenant": scope.tenant, **fields}


# ---- tenant administration ---------------------------------------------------------------

def tenant_info(store, scope: Scope) -> dict:
    tenant = store.get_tenant(scope.tenant)
    if tenant is None:
        raise ApiError(404, f"unknown tenant {scope.tenant!r}")
    return {"tenant": scope.tenant, "roles": tenant["roles"]}


def set_role(store, scope: Scope, role: str, permissions: list[str]) -> dict:
    bad = [p for p in permissions if not re.match(PERMISSION_PATTERN, p)]
    if bad:
        raise ApiError(400, f"permissions: not of the form area:verb: {bad}")
    roles = dict(tenant_info(store, scope)["roles"])
    roles[role] = sorted(set(permissions))
    store.set_tenant_roles(scope.tenant, roles)
    record(store, scope.tenant, scope.actor, "role.set", role, permissions=roles[role])
    return {"tenant": scope.tenant, "roles": roles}


def delete_role(store, scope: Scope, role: str) -> dict:
    roles = dict(tenant_info(store, scope)["roles"])
    if role not in roles:
        raise ApiError(404, f"unknown role {role!r}")
    del roles[role]
    store.set_tenant_roles(scope.tenant, roles)
    record(store, scope.tenant, scope.actor, "role.delete", role)
    return {"tenant": scope.tenant, "roles": roles}


def check_grace(grace_s) -> float:
    """A rotation's grace period: a finite number of seconds, 0 (the old key refused at once) to MAX_GRACE_S."""
    if isinstance(grace_s, bool) or not isinstance(grace_s, (int, float)) or not math.isfinite(grace_s) \
            or not 0 <= grace_s <= MAX_GRACE_S:
        raise ApiError(400, f"grace_s: must be a number of seconds from 0 to {MAX_GRACE_S}, not {grace_s!r}")
    return float(grace_s)


def rotate_api_key(store, scope: Scope, grace_s: float = 0) -> dict:
    """A new tenant API key; tokens signed with the old one stay valid for grace_s seconds (0: none)."""
    grace_s = check_grace(grace_s)
    tenant_info(store, scope)
    key = new_key()
    try:
        until = store.rotate_tenant_key(scope.tenant, key, grace_s, actor=scope.actor)
    except NotFound:
        raise ApiError(404, f"unknown tenant {scope.tenant!r}")
    record(store, scope.tenant, scope.actor, "tenant.rotate_api_key", scope.tenant, grace_s=grace_s,
           previous_key_accepted_until=until)
    return {"tenant": scope.tenant, "api_key": key, "previous_key_accepted_until": until}


# ---- secrets ------------------------------------------------------------------------------

def rotate_device_key(store, scope: Scope, device_id: str, grace_s: float = DEVICE_KEY_GRACE_S) -> dict:
    """A new device key, returned once; the old one proves registration for grace_s seconds more."""
    grace_s = check_grace(grace_s)
    scoped_device(store, scope, device_id)
    key = new_key()
    try:
        until = store.rotate_device_key(device_id, key, grace_s, actor=scope.actor)
    except NotFound:  # de-provisioned in between
        raise ApiError(404, f"unknown device {device_id!r}")
    record(store, scope.tenant, scope.actor, "device.rotate_key", device_id, grace_s=grace_s,
           previous_key_accepted_until=until)
    return {"device_id": device_id, "device_key": key, "previous_key_accepted_until": until}


def secret_audit(store, scope: Scope, subject: str | None, limit: int) -> dict:
    """The secret audit trail of the caller's tenant (its key, its devices' keys), newest `limit`, oldest first."""
    return {"audit": store.list_secret_audit(subject, limit, tenant=scope.tenant)}
