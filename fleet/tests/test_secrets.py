"""Secrets at rest: device and tenant keys sealed in the database, rotation with a grace period,
master-key rotation by re-sealing, and an audit trail of every secret operation."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from fleet_devtools.fleet_harness import Device, admin_json, api_token, assert_error, new_id, proof, registration_body, run_admin
from fleet_server.secrets_backend import FileKeyring
from fleet_server.storage import open_storage


def raw_rows(db, sql, args=(), secrets=None):
    """Rows as stored (sealed values stay sealed)."""
    store = open_storage(str(db), secrets=secrets)
    try:
        return [dict(r) for r in store._all(sql, args)]
    finally:
        store.close()


def register(server, prov, key):
    with server.client() as c:
        nonce = c.post(f"/api/devices/{prov['device_id']}/challenge").json()["nonce"]
        return c.post("/api/devices", json=registration_body(prov, nonce, proof=proof(key, nonce, prov["device_id"])))


def test_device_and_tenant_keys_are_sealed_at_rest(server):
    tenant = new_id("t")
    prov = admin_json(server.db, "provision", "--id", new_id(), "--tenant", tenant, "--namespace", "n",
                      "--role", "relays")
    device_row = raw_rows(server.db, "SELECT device_key FROM devices WHERE id=?", (prov["device_id"],))[0]
    tenant_row = raw_rows(server.db, "SELECT api_key FROM tenants WHERE tenant=?", (tenant,))[0]
    secret_row = raw_rows(server.db, "SELECT value FROM meta WHERE key='device_token_secret'")[0]
    for row, plain in ((device_row["device_key"], prov["device_key"]), (tenant_row["api_key"], prov["api_key"])):
        assert row.startswith("enc:v1:") and plain not in row
    assert secret_row["value"].startswith("enc:v1:")
    if not str(server.db).startswith("postgresql"):  # nowhere in the file or its WAL either
        for path in (str(server.db), str(server.db) + "-wal"):
            if os.path.exists(path):
                data = open(path, "rb").read()
                assert prov["device_key"].encode() not in data and prov["api_key"].encode() not in data
    audit = admin_json(server.db, "secrets-audit", "--subject", f"device:{prov['device_id']}")["audit"]
    assert [(e["action"], e["actor"].split(":")[0]) for e in audit] == [("create_device_key", "fleet-admin")]


def test_device_key_rotation_accepts_both_keys_in_the_grace_period_then_only_the_new(server):
    prov = admin_json(server.db, "provision", "--id", new_id(), "--tenant", "acme", "--namespace", "plant1",
                      "--role", "relays")
    old = prov["device_key"]
    proc = run_admin(server.db, "rotate-device-key", "--id", prov["device_id"], "--grace", "2")
    assert proc.returncode == 0, proc.stderr
    rotated = json.loads(proc.stdout)
    new = rotated["device_key"]
    assert new != old and rotated["previous_key_accepted_until"] > time.time()
    assert register(server, prov, old).status_code == 200  # a device not yet given its new key
    assert register(server, prov, new).status_code == 200
    time.sleep(max(0.0, rotated["previous_key_accepted_until"] - time.time()) + 0.2)
    assert_error(register(server, prov, old), 401, "wrong proof")
    assert register(server, prov, new).status_code == 200
    audit = admin_json(server.db, "secrets-audit", "--subject", f"device:{prov['device_id']}")["audit"]
    assert [e["action"] for e in audit] == ["create_device_key", "rotate_device_key"]
    assert audit[1]["detail"]["grace_s"] == 2


def test_tenant_key_rotation_keeps_old_tokens_valid_for_the_grace_period(server):
    tenant = new_id("t")
    device = Device(server, tenant=tenant)
    old_token = api_token(server.db, tenant, device.namespace, "admin")
    rotated = admin_json(server.db, "rotate-tenant-key", "--tenant", tenant, "--grace", "2")
    new_token = api_token(server.db, tenant, device.namespace, "admin")
    assert rotated["api_key"] != device.prov["api_key"]
    for token in (old_token, new_token):
        with server.client(token) as c:
            assert c.get(device.state_path).status_code == 200
    time.sleep(max(0.0, rotated["previous_key_accepted_until"] - time.time()) + 0.2)
    with server.client(old_token) as c:
        assert_error(c.get(device.state_path), 401)
    with server.client(new_token) as c:
        assert c.get(device.state_path).status_code == 200
    assert [e["action"] for e in admin_json(server.db, "secrets-audit", "--subject", f"tenant:{tenant}")["audit"]] \
        == ["create_tenant_key", "rotate_api_key"]


def test_new_master_key_reseals_everything_and_plain_values_are_sealed(tmp_path):
    db = tmp_path / "fleet.sqlite"
    keys = f"file:{tmp_path / 'keys.json'}"
    prov = admin_json(db, "--secrets", keys, "provision", "--id", "d1", "--tenant", "acme", "--namespace", "n",
                      "--role", "relays")
    store = open_storage(str(db), secrets=keys)
    try:  # a row from before sealing: still usable, and sealed by the next reseal
        store._write("INSERT INTO devices (id, tenant, namespace, role, device_key, created_at)"
                     " VALUES ('legacy', 'acme', 'n', 'relays', 'plainkey', 0)")
        assert store.get_device("legacy")["device_key"] == "plainkey"
    finally:
        store.close()
    out = admin_json(db, "--secrets", keys, "secrets-reseal", "--new-master-key")
    assert out["key_id"] == "k2" and out["resealed"]["devices"] == 2 and out["resealed"]["tenants"] == 1
    rows = {r["id"]: r["device_key"] for r in raw_rows(db, "SELECT id, device_key FROM devices", secrets=keys)}
    assert all(v.startswith("enc:v1:k2:") for v in rows.values())
    store = open_storage(str(db), secrets=keys)
    try:
        assert store.get_device("d1")["device_key"] == prov["device_key"]
        assert store.get_device("legacy")["device_key"] == "plainkey"
        assert [e["action"] for e in store.list_secret_audit()][-2:] == ["add_master_key", "reseal"]
    finally:
        store.close()
    assert admin_json(db, "--secrets", keys, "secrets-reseal")["resealed"] == {"devices": 0, "tenants": 0, "meta": 0}


def test_another_master_key_cannot_open_the_secrets(tmp_path):
    db = tmp_path / "fleet.sqlite"
    admin_json(db, "--secrets", f"file:{tmp_path / 'a.json'}", "provision", "--id", "d1", "--tenant", "acme",
               "--namespace", "n", "--role", "relays")
    os.environ["FLEET_SECRETS_KEYS"] = "k1:" + "11" * 32
    try:
        proc = run_admin(db, "--secrets", "env", "config-get", "--id", "d1")
    finally:
        del os.environ["FLEET_SECRETS_KEYS"]
    assert proc.returncode == 2 and "does not open: wrong master key or tampered" in proc.stderr


@pytest.mark.parametrize("spec, env, reason", [
    ("vault:secret/fleet", None, "unknown secrets backend 'vault:secret/fleet'"),
    ("env", "", "FLEET_SECRETS_KEYS is empty"),
    ("env", "k1:abcd", "must be 64 hex characters"),
])
def test_bad_secrets_backend_is_one_clear_line(tmp_path, spec, env, reason):
    saved = os.environ.get("FLEET_SECRETS_KEYS")
    if env is not None:
        os.environ["FLEET_SECRETS_KEYS"] = env
    try:
        proc = run_admin(tmp_path / "x.sqlite", "--secrets", spec, "config-get", "--id", "d1")
    finally:
        os.environ.pop("FLEET_SECRETS_KEYS", None)
        if saved is not None:
            os.environ["FLEET_SECRETS_KEYS"] = saved
    assert proc.returncode == 2 and reason in proc.stderr and proc.stderr.count("\n") == 1


def test_processes_creating_the_keyring_at_once_agree_on_one_key(tmp_path):
    path, rings = str(tmp_path / "keys.json"), [None] * 8
    barrier = threading.Barrier(8)

    def create(i):
        barrier.wait()
        rings[i] = FileKeyring(path)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({r.key("k1") for r in rings}) == 1 and os.listdir(tmp_path) == ["keys.json"]
    assert os.stat(path).st_mode & 0o777 == 0o600
