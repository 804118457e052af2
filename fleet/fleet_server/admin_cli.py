"""`fleet-admin --url URL --token T <command>` (the admin API) or `--db PATH|URL` (bootstrap, on the database).

Output is JSON on stdout; any error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from . import admin_client, admin_ops
from .admin_ops import ACTIONS, DEVICE_ROLES
from .api_error import ApiError
from .audit import Scope
from .storage import Storage, open_storage

BOOTSTRAP_ACTOR = "fleet-admin --db"


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


def _scope(store: Storage, device_id: str) -> Scope:
    _device(store, device_id)
    return admin_ops.device_scope(store, device_id, BOOTSTRAP_ACTOR)


# ---- commands on the database: each takes (store, args) and returns what to print ----------

def cmd_provision(store: Storage, a) -> dict:
    return admin_ops.provision(store, Scope(a.tenant, a.namespace, BOOTSTRAP_ACTOR), a.id, a.role)


def cmd_config_set(store: Storage, a) -> dict:
    return admin_ops.set_config(store, _scope(store, a.id), a.id, _read_json(a.file))


def cmd_config_get(store: Storage, a) -> dict:
    _device(store, a.id)
    version, config = store.get_config(a.id)
    return {"device_id": a.id, "version": version, "config": config}


def cmd_state_get(store: Storage, a) -> dict:
    _device(store, a.id)
    return dict(store.get_state(a.id), device_id=a.id)


def cmd_state_set_desired(store: Storage, a) -> dict:
    return admin_ops.set_desired(store, _scope(store, a.id), a.id, _read_json(a.file))


def cmd_alarms(store: Storage, a) -> dict:
    device = _device(store, a.id)
    return {"alarms": store.list_alarms(device["tenant"], a.id),
            "dropped": store.get_dropped(device["tenant"], a.id).get(a.id, 0)}


def cmd_heartbeat(store: Storage, a) -> dict:
    _device(store, a.id)
    return {"device_id": a.id, "heartbeat": store.get_heartbeat(a.id)}


def cmd_action(store: Storage, a) -> dict:
    return admin_ops.queue_action(store, _scope(store, a.id), a.id, a.action)


def cmd_token(store: Storage, a) -> dict:
    return admin_ops.mint_token(store, Scope(a.tenant, a.namespace, BOOTSTRAP_ACTOR), a.role, a.ttl, a.sub)


def cmd_publish(store: Storage, a) -> dict:
    manifest = _read_json(a.manifest)
    try:
        with open(a.file, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CliError(f"{a.file}: {exc}")
    return admin_ops.publish(store, Scope(a.tenant, "", BOOTSTRAP_ACTOR), manifest, data)


def cmd_role_set(store: Storage, a) -> dict:
    return admin_ops.set_role(store, Scope(a.tenant, "", BOOTSTRAP_ACTOR), a.role, a.permissions)


def cmd_deprovision(store: Storage, a) -> dict:
    return admin_ops.deprovision(store, _scope(store, a.id), a.id)


def cmd_rotate_device_key(store: Storage, a) -> dict:
    return admin_ops.rotate_device_key(store, _scope(store, a.id), a.id, a.grace)


def cmd_rotate_tenant_key(store: Storage, a) -> dict:
    return admin_ops.rotate_api_key(store, Scope(a.tenant, "", BOOTSTRAP_ACTOR), a.grace)


def cmd_secrets_audit(store: Storage, a) -> dict:
    return {"audit": store.list_secret_audit(a.subject, a.limit)}


def cmd_secrets_reseal(store: Storage, a) -> dict:
    if a.new_master_key:
        add_key = getattr(store.box.backend, "add_key", None)
        if add_key is None:
            raise CliError("--new-master-key needs a file: keyring (with env, add the key to FLEET_SECRETS_KEYS)")
        store.record_secret_audit("add_master_key", "keyring", {"key_id": add_key()})
    return {"resealed": store.reseal_secrets(), "key_id": store.box.backend.current_key_id()}


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fleet-admin", description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required="FLEET_DB" not in os.environ)
    where.add_argument("--db", help="the fleet server's SQLite file or postgresql:// URL (bootstrap: acts as "
                                    "any tenant; default: $FLEET_DB)")
    where.add_argument("--url", help="the fleet server's base URL: commands go through its admin API")
    p.add_argument("--token", default=os.environ.get("FLEET_TOKEN"),
                   help="API token for --url (default: $FLEET_TOKEN)")
    p.add_argument("--secrets", default=os.environ.get("FLEET_SECRETS"),
                   help="with --db: master keys sealing secrets at rest: file:PATH or env (default: "
                        "$FLEET_SECRETS, else the keyring file beside a SQLite database)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, db_fn, http_fn, help_):
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(fn=db_fn, http_fn=http_fn)
        return sp

    def scope_args(sp, namespace=True):  # required with --db; with --url the token's scope applies
        sp.add_argument("--tenant")
        if namespace:
            sp.add_argument("--namespace")

    sp = command("provision", cmd_provision, admin_client.provision, "create a device key and tenant binding")
    sp.add_argument("--id", required=True)
    scope_args(sp)
    sp.add_argument("--role", required=True, choices=DEVICE_ROLES)

    sp = command("config-set", cmd_config_set, admin_client.config_set,
                 "validate and store a device config (bumps the version)")
    sp.add_argument("--id", required=True)
    sp.add_argument("--file", required=True)
    for name, fn, http_fn, help_ in (
            ("config-get", cmd_config_get, admin_client.config_get, "print the current config"),
            ("state-get", cmd_state_get, admin_client.state_get, "print desired and reported state"),
            ("alarms", cmd_alarms, admin_client.alarms, "print the device's deduplicated alarms"),
            ("heartbeat", cmd_heartbeat, admin_client.heartbeat,
             "print the last heartbeat (--url: the device's inventory entry)"),
            ("deprovision", cmd_deprovision, admin_client.deprovision, "remove a device and its data")):
        command(name, fn, http_fn, help_).add_argument("--id", required=True)

    sp = command("state-set-desired", cmd_state_set_desired, admin_client.state_set_desired,
                 "set desired state from a JSON object file")
    sp.add_argument("--id", required=True)
    sp.add_argument("--file", required=True)

    sp = command("action", cmd_action, admin_client.action, "queue an action delivered with the next heartbeat reply")
    sp.add_argument("--id", required=True)
    sp.add_argument("action", choices=ACTIONS)

    sp = command("token", cmd_token, admin_client.token, "mint an API-caller JWT signed with the tenant's API key")
    scope_args(sp)
    sp.add_argument("--role", required=True)
    sp.add_argument("--ttl", type=int, default=3600,
                    help="lifetime in seconds (devices refuse more than their "
                         "max_token_lifetime_s, 86400 by default)")
    sp.add_argument("--sub")

    # secrets at rest: key rotation with a grace period and the audit trail (--url: the token's tenant)
    grace_help = (f"seconds the old key stays accepted (default 86400; 0: refused at once; "
                  f"at most {admin_ops.MAX_GRACE_S})")
    sp = command("rotate-device-key", cmd_rotate_device_key, admin_client.rotate_device_key,
                 "new key for a device (printed once); the old one stays accepted for --grace seconds")
    sp.add_argument("--id", required=True)
    sp.add_argument("--grace", type=float, default=86400, help=grace_help)
    sp = command("rotate-tenant-key", cmd_rotate_tenant_key, admin_client.rotate_tenant_key,
                 "new API key for the tenant; tokens signed with the old one stay valid for --grace seconds")
    scope_args(sp, namespace=False)
    sp.add_argument("--grace", type=float, default=86400, help=grace_help)
    sp = command("secrets-audit", cmd_secrets_audit, admin_client.secrets_audit,
                 "print the audit trail of secret operations (--url: the token's tenant only)")
    sp.add_argument("--subject", help="e.g. device:pico-1, tenant:acme")
    sp.add_argument("--limit", type=int, default=200)
    # only on the database (--db): the master keys live on the server host
    sp = command("secrets-reseal", cmd_secrets_reseal, None, "seal every secret under the current master key")
    sp.add_argument("--new-master-key", action="store_true", help="first add a master key and make it current")

    sp = command("publish", cmd_publish, admin_client.publish, "store an update artefact and its manifest")
    scope_args(sp, namespace=False)
    sp.add_argument("--file", required=True)
    sp.add_argument("--manifest", required=True)

    sp = command("role-set", cmd_role_set, admin_client.role_set,
                 "create or replace a tenant role's permissions (tokens minted afterwards get them)")
    scope_args(sp, namespace=False)
    sp.add_argument("--role", required=True)
    sp.add_argument("permissions", nargs="+", help="area:verb, e.g. devices:read")

    # only through the API (they need the running server: inventory, alarm lifecycle, audit)
    sp = command("devices", None, admin_client.devices, "the inventory, filtered and paged")
    sp.add_argument("--role")
    sp.add_argument("--online", choices=("true", "false"))
    sp.add_argument("--limit", type=int, default=50)
    sp.add_argument("--offset", type=int, default=0)
    for name, fn, help_ in (("ack", admin_client.alarm_ack, "acknowledge an open alarm"),
                            ("clear", admin_client.alarm_clear, "clear an alarm")):
        sp = command(name, None, fn, help_)
        sp.add_argument("--id", required=True)
        sp.add_argument("--type", required=True)
        sp.add_argument("--source", required=True)
    sp = command("audit", None, admin_client.audit, "the tenant's audit log, newest first")
    sp.add_argument("--action", help="action prefix, e.g. alarm.")
    sp.add_argument("--limit", type=int, default=100)
    return p


def _run_db(args) -> dict:
    if args.fn is None:
        raise CliError(f"{args.command} needs --url (it goes through the running server)")
    for name in ("tenant", "namespace"):
        if hasattr(args, name) and getattr(args, name) is None:
            raise CliError(f"--{name} is required with --db")
    store = open_storage(args.db or os.environ["FLEET_DB"], pool_size=1, secrets=args.secrets,
                         actor=f"fleet-admin:{_operator()}")
    try:
        return args.fn(store, args)
    except ApiError as exc:
        raise CliError(exc.detail)
    finally:
        store.close()


def _run_http(args) -> dict:
    if args.http_fn is None:
        raise CliError(f"{args.command} needs --db (it works on the database itself)")
    try:
        client = admin_client.Admin(args.url, args.token or "")
        try:
            return args.http_fn(client, args)
        finally:
            client.close()
    except admin_client.HttpCliError as exc:
        raise CliError(str(exc))


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid: the uid itself
        return str(os.getuid())


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        result = _run_http(args) if args.url else _run_db(args)
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
