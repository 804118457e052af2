"""fleet-admin: JSON on stdout, one-line errors with exit status 2, API tokens as the device expects."""

import json
import subprocess

import jwt

from fleet_devtools.fleet_harness import _script, admin_json, new_id, run_admin

ADMIN_PERMS = ["relays:read", "relays:write", "sensors:read", "ota:admin", "state:write", "alarms:read",
               "alarms:write", "devices:read", "devices:admin", "config:write", "tenant:admin", "audit:read"]


def test_provision_prints_what_to_flash_and_refuses_duplicates(tmp_db):
    res = run_admin(tmp_db, "provision", "--id", "pico-1", "--tenant", "acme", "--namespace", "ns", "--role",
                    "sensors")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert set(out) == {"device_id", "device_key", "tenant", "namespace", "api_key", "role"}
    assert len(out["device_key"]) == 64 and len(out["api_key"]) == 64 and out["role"] == "sensors"
    again = admin_json(tmp_db, "provision", "--id", "pico-2", "--tenant", "acme", "--namespace", "ns2", "--role",
                       "relays")
    assert again["api_key"] == out["api_key"]  # one API key per tenant
    dup = run_admin(tmp_db, "provision", "--id", "pico-1", "--tenant", "acme", "--namespace", "ns", "--role",
                    "relays")
    assert dup.returncode == 2 and dup.stdout == "" and len(dup.stderr.strip().splitlines()) == 1


def test_token_claims_follow_the_tenant_role_table(tmp_db):
    api_key = admin_json(tmp_db, "provision", "--id", new_id(), "--tenant", "acme", "--namespace", "ns",
                         "--role", "relays")["api_key"]
    expected = {"admin": ADMIN_PERMS,
                "operator": ["relays:read", "relays:write", "sensors:read", "state:write", "alarms:read",
                             "alarms:write", "devices:read"],
                "viewer": ["relays:read", "sensors:read", "devices:read"]}
    for role, perms in expected.items():
        token = admin_json(tmp_db, "token", "--tenant", "acme", "--namespace", "ns", "--role", role,
                           "--ttl", "120", "--sub", "alice")["token"]
        claims = jwt.decode(token, api_key, algorithms=["HS256"], audience="iotlib", issuer="fleet")
        assert claims["sub"] == "alice" and claims["tenant"] == "acme" and claims["namespace"] == "ns"
        assert claims["role"] == role and claims["permissions"] == perms and claims["exp"] - claims["iat"] == 120


def test_errors_are_one_line_with_exit_2(tmp_db):
    admin_json(tmp_db, "provision", "--id", "d", "--tenant", "acme", "--namespace", "ns", "--role", "relays")
    for args in (("token", "--tenant", "acme", "--namespace", "ns", "--role", "superuser"),
                 ("token", "--tenant", "nobody", "--namespace", "ns", "--role", "admin"),
                 ("config-get", "--id", "ghost"),
                 ("provision", "--id", "x", "--tenant", "acme", "--namespace", "ns", "--role", "toaster"),
                 ("no-such-command",),
                 ("config-set", "--id", "d", "--file", "/nonexistent.json")):
        res = run_admin(tmp_db, *args)
        assert res.returncode == 2, args
        assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)


def test_role_set_upgrades_a_tenant_made_before_new_permissions(tmp_db):
    # a tenant's role table is copied at creation: bootstrap can extend it afterwards
    api_key = admin_json(tmp_db, "provision", "--id", new_id(), "--tenant", "old", "--namespace", "ns",
                         "--role", "relays")["api_key"]
    out = admin_json(tmp_db, "role-set", "--tenant", "old", "--role", "viewer", "relays:read", "audit:read")
    assert out["roles"]["viewer"] == ["audit:read", "relays:read"]
    token = admin_json(tmp_db, "token", "--tenant", "old", "--namespace", "ns", "--role", "viewer")["token"]
    assert jwt.decode(token, api_key, algorithms=["HS256"], audience="iotlib")["permissions"] == [
        "audit:read", "relays:read"]
    res = run_admin(tmp_db, "role-set", "--tenant", "old", "--role", "viewer", "Everything")
    assert res.returncode == 2 and "area:verb" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_database_only_and_api_only_commands_say_which_they_need(tmp_db):
    # secrets-reseal works on the master keys, which only the server host has
    for args, needs in ((("--url", "http://127.0.0.1:9", "secrets-reseal"), "--db"),
                        (("--url", "http://127.0.0.1:9", "secrets-reseal", "--new-master-key"), "--db"),
                        (("--db", str(tmp_db), "audit"), "--url")):
        res = subprocess.run(_script("fleet-admin") + list(args), capture_output=True, text=True, timeout=30)
        assert res.returncode == 2 and f"needs {needs}" in res.stderr, (args, res.stderr)
