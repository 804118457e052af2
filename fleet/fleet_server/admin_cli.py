"""`fleet-admin --db PATH|URL <command>`: operate on the fleet database directly.

Output is JSON on stdout; any error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from pydantic import ValidationError

from .auth import DEFAULT_ROLES, mint_api_token, new_key
from .api_error import validation_detail
from .device_config import validate_config
from .storage import AlreadyExists, Storage, open_storage
from .update_manifest import PublishManifest, artifact_name, check_file_matches

DEVICE_ROLES = ("relays", "sensors")
ACTIONS = ("reboot", "refresh_token", "check_update")


class CliError(Exception):
    """An error the operator can act on; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line on stderr and exit 2, like every other error here
        raise CliError(message)


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise CliError(f"{path}: {exc}")


def _device(store: Storage, device_id: str) -> dict:
    device = store.get_device(device_id)
    if device is None:
        raise CliError(f"unknown device {device_id!r}")
    return device


# ---- commands: each takes (store, args) and returns what to print ----------------------

def cmd_provision(store: Storage, a) -> dict:
    tenant = store.ensure_tenant(a.tenant, new_key(), DEFAULT_ROLES)
    device_key = new_key()
    try:
        store.create_device({"id": a.id, "tenant": a.tenant, "namespace": a.namespace,
                             "role": a.role, "device_key": device_key})
    except AlreadyExists:
        raise CliError(f"device {a.id!r} is already provisioned")
    return {"device_id": a.id, "device_key": device_key, "tenant": a.tenant, "namespace": a.namespace,
            "api_key": tenant["api_key"], "role": a.role}


def cmd_config_set(store: Storage, a) -> dict:
    _device(store, a.id)
    try:
        config = validate_config(_read_json(a.file))
    except ValidationError as exc:
        raise CliError(f"invalid config: {validation_detail(exc.errors())}")
    return {"device_id": a.id, "version": store.put_config(a.id, config)}


def cmd_config_get(store: Storage, a) -> dict:
    _device(store, a.id)
    version, config = store.get_config(a.id)
    return {"device_id": a.id, "version": version, "config": config}


def cmd_state_get(store: Storage, a) -> dict:
    _device(store, a.id)
    return dict(store.get_state(a.id), device_id=a.id)


def cmd_state_set_desired(store: Storage, a) -> dict:
    _device(store, a.id)
    desired = _read_json(a.file)
    if not isinstance(desired, dict):
        raise CliError("desired state must be a JSON object")
    store.put_desired(a.id, desired, None)
    return dict(store.get_state(a.id), device_id=a.id)


def cmd_alarms(store: Storage, a) -> dict:
    device = _device(store, a.id)
    return {"alarms": store.list_alarms(device["tenant"], a.id),
            "dropped": store.get_dropped(device["tenant"], a.id).get(a.id, 0)}


def cmd_heartbeat(store: Storage, a) -> dict:
    _device(store, a.id)
    return {"device_id": a.id, "heartbeat": store.get_heartbeat(a.id)}


def cmd_action(store: Storage, a) -> dict:
    _device(store, a.id)
    store.queue_action(a.id, a.action)
    return {"device_id": a.id, "queued": a.action}


def cmd_token(store: Storage, a) -> dict:
    tenant = store.get_tenant(a.tenant)
    if tenant is None:
        raise CliError(f"unknown tenant {a.tenant!r} (provision a device first)")
    try:
        token = mint_api_token(tenant, a.namespace, a.role, a.sub or a.role, a.ttl)
    except ValueError as exc:
        raise CliError(str(exc))
    return {"token": token}


def cmd_publish(store: Storage, a) -> dict:
    if store.get_tenant(a.tenant) is None:
        raise CliError(f"unknown tenant {a.tenant!r}")
    try:
        manifest = PublishManifest.model_validate(_read_json(a.manifest))
    except ValidationError as exc:
        raise CliError(f"invalid manifest: {validation_detail(exc.errors())}")
    try:
        with open(a.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CliError(f"{a.file}: {exc}")
    try:
        check_file_matches(manifest, data)
    except ValueError as exc:
        raise CliError(f"manifest does not match file: {exc}")
    name = artifact_name(a.tenant, manifest)
    try:
        store.put_artifact(name, a.tenant, manifest.model_dump(exclude_none=True), data)
    except AlreadyExists:
        raise CliError(f"artefact {name!r} is already published")
    return {"name": name, "tenant": a.tenant, **manifest.model_dump(exclude_none=True)}


def cmd_rotate_device_key(store: Storage, a) -> dict:
    _device(store, a.id)
    new = new_key()
    until = store.rotate_device_key(a.id, new, a.grace)
    return {"device_id": a.id, "device_key": new, "previous_key_accepted_until": until}


def cmd_rotate_tenant_key(store: Storage, a) -> dict:
    if store.get_tenant(a.tenant) is None:
        raise CliError(f"unknown tenant {a.tenant!r}")
    new = new_key()
    until = store.rotate_tenant_key(a.tenant, new, a.grace)
    return {"tenant": a.tenant, "api_key": new, "previous_key_accepted_until": until}


def cmd_secrets_audit(store: Storage, a) -> dict:
    return {"audit": store.list_audit(a.subject, a.limit)}


def cmd_secrets_reseal(store: Storage, a) -> dict:
    if a.new_master_key:
        add_key = getattr(store.box.backend, "add_key", None)
        if add_key is None:
            raise CliError("--new-master-key needs a file: keyring (with env, add the key to FLEET_SECRETS_KEYS)")
        store.record_audit("add_master_key", "keyring", {"key_id": add_key()})
    return {"resealed": store.reseal_secrets(), "key_id": store.box.backend.current_key_id()}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fleet-admin", description=__doc__.splitlines()[0])
    p.add_argument("--db", default=os.environ.get("FLEET_DB"), required="FLEET_DB" not in os.environ,
                   help="the fleet server's SQLite file or postgresql:// URL (default: $FLEET_DB)")
    p.add_argument("--secrets", default=os.environ.get("FLEET_SECRETS"),
                   help="master keys sealing secrets at rest: file:PATH or env (default: $FLEET_SECRETS, "
                        "else the keyring file beside a SQLite database)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, fn, help_):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(fn=fn)
        return sp

    sp = command("provision", cmd_provision, "create a device key and tenant binding")
    sp.add_argument("--id", required=True)
    sp.add_argument("--tenant", required=True)
    sp.add_argument("--namespace", required=True)
    sp.add_argument("--role", required=True, choices=DEVICE_ROLES)

    sp = command("config-set", cmd_config_set, "validate and store a device config (bumps the version)")
    sp.add_argument("--id", required=True)
    sp.add_argument("--file", required=True)
    for name, fn, help_ in (("config-get", cmd_config_get, "print the current config"),
                            ("state-get", cmd_state_get, "print desired and reported state"),
                            ("alarms", cmd_alarms, "print the device's deduplicated alarms"),
                            ("heartbeat", cmd_heartbeat, "print the last heartbeat")):
        command(name, fn, help_).add_argument("--id", required=True)

    sp = command("state-set-desired", cmd_state_set_desired, "set desired state from a JSON object file")
    sp.add_argument("--id", required=True)
    sp.add_argument("--file", required=True)

    sp = command("action", cmd_action, "queue an action delivered with the next heartbeat reply")
    sp.add_argument("--id", required=True)
    sp.add_argument("action", choices=ACTIONS)

    sp = command("token", cmd_token, "mint an API-caller JWT signed with the tenant's API key")
    sp.add_argument("--tenant", required=True)
    sp.add_argument("--namespace", required=True)
    sp.add_argument("--role", required=True)
    sp.add_argument("--ttl", type=int, default=3600)
    sp.add_argument("--sub")

    for name, fn, what in (("rotate-device-key", cmd_rotate_device_key, "--id"),
                           ("rotate-tenant-key", cmd_rotate_tenant_key, "--tenant")):
        sp = command(name, fn, f"new key for {what[2:]}; the old one stays accepted for --grace seconds")
        sp.add_argument(what, dest=what[2:], required=True)
        sp.add_argument("--grace", type=float, default=86400, help="seconds the old key stays accepted")
    sp = command("secrets-audit", cmd_secrets_audit, "print the audit trail of secret operations")
    sp.add_argument("--subject", help="e.g. device:pico-1, tenant:acme")
    sp.add_argument("--limit", type=int, default=200)
    sp = command("secrets-reseal", cmd_secrets_reseal, "seal every secret under the current master key")
    sp.add_argument("--new-master-key", action="store_true", help="first add a master key and make it current")

    sp = command("publish", cmd_publish, "store an update artefact and its manifest")
    sp.add_argument("--tenant", required=True)
    sp.add_argument("--file", required=True)
    sp.add_argument("--manifest", required=True)
    return p


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid: the uid itself
        return str(os.getuid())


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        store = open_storage(args.db, pool_size=1, secrets=args.secrets, actor=f"fleet-admin:{_operator()}")
        try:
            result = args.fn(store, args)
        finally:
            store.close()
    except CliError as exc:
        print(f"fleet-admin: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # storage trouble etc.: still one line, still exit 2
        print(f"fleet-admin: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
