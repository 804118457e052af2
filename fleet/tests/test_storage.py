"""The storage contract, run on SQLite and on PostgreSQL: every method, migrations, and concurrent
writers through two handles on one database (two processes / two replicas) losing nothing."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from fleet_server.storage import SchemaTooNew, SqliteStorage, StaleVersion, open_storage, redact_target
from fleet_server.storage.migrate import load_migrations, migrate, schema_version


@pytest.fixture(params=["sqlite", "postgres"])
def target(request, tmp_path) -> str:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "fleet.sqlite")
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def store(target):
    s = open_storage(target)
    yield s
    s.close()


@pytest.fixture
def two_handles(target):
    """Two independent handles on one database, as two server processes would hold."""
    a, b = open_storage(target), open_storage(target)
    yield a, b
    a.close()
    b.close()


def provision(store, device_id="d1", tenant="acme"):
    store.ensure_tenant(tenant, "key-" + tenant, {"admin": ["alarms:read"]})
    store.create_device({"id": device_id, "tenant": tenant, "namespace": "ns", "role": "relays", "device_key": "k"})


def alarm(count=1, t=1000.0, **kw):
    return dict({"type": "overtemp", "source": "t1", "severity": "warning", "count": count,
                 "first_seen": t, "last_seen": t, "message": None}, **kw)


def race(n_threads: int, fn) -> list:
    """Run fn(i) on n threads released together; returns each result or exception."""
    barrier, results = threading.Barrier(n_threads), [None] * n_threads

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:  # the caller inspects which ones failed and how
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


# ---- every method, same answers on both engines ----------------------------------------------

def test_devices_tenants_meta(store):
    assert store.get_tenant("acme") is None and store.get_device("d1") is None
    provision(store)
    assert store.ensure_tenant("acme", "other-key", {})["api_key"] == "key-acme"  # first binding kept
    device = store.get_device("d1")
    assert {k: device[k] for k in ("id", "tenant", "namespace", "role", "device_key", "registration")} == \
        {"id": "d1", "tenant": "acme", "namespace": "ns", "role": "relays", "device_key": "k", "registration": None}
    with pytest.raises(Exception) as exc:
        store.create_device({"id": "d1", "tenant": "acme", "namespace": "ns", "role": "relays", "device_key": "x"})
    assert type(exc.value).__name__ == "AlreadyExists"
    store.update_registration("d1", {"firmware_version": "1.2.3", "registered_at": 12.5})
    assert store.get_device("d1")["registration"] == {"firmware_version": "1.2.3", "registered_at": 12.5}
    with pytest.raises(Exception, match="nope"):
        store.update_registration("nope", {})
    assert store.set_meta_if_absent("s", "first") == "first"
    assert store.set_meta_if_absent("s", "second") == "first" and store.get_meta("s") == "first"
    assert store.get_meta("absent") is None


def test_nonces_are_single_use_and_swept(store):
    provision(store)
    store.put_nonce("n1", "d1", 2000.5)
    store.put_nonce("old", "d1", 10.0)
    assert store.take_nonce("n1") == ("d1", 2000.5)
    assert store.take_nonce("n1") is None
    assert store.sweep_nonces(expired_before=100.0) == 1
    assert store.take_nonce("old") is None


def test_heartbeat_actions_config_state(store):
    provision(store)
    assert store.get_heartbeat("d1") is None
    store.record_heartbeat("d1", {"uptime_s": 1})
    store.record_heartbeat("d1", {"uptime_s": 2})
    assert store.get_heartbeat("d1") == {"uptime_s": 2}
    for action in ("reboot", "check_update", "reboot"):
        store.queue_action("d1", action)
    assert store.take_actions("d1") == ["reboot", "check_update"] and store.take_actions("d1") == []
    assert store.get_config("d1") == (0, {})
    assert store.put_config("d1", {"a": 1}) == 1 and store.put_config("d1", {"a": 2}) == 2
    assert store.get_config("d1") == (2, {"a": 2})
    assert store.get_state("d1") == {"desired": {}, "desired_version": 0, "reported": {}, "version": 0}
    assert store.put_reported("d1", {"pump": "on"}, 0) == 1
    with pytest.raises(StaleVersion) as stale:
        store.put_reported("d1", {"pump": "off"}, 0)
    assert stale.value.current == 1
    assert store.put_desired("d1", {"pump": "off"}, None) == 1
    with pytest.raises(StaleVersion):
        store.put_desired("d1", {"pump": "x"}, 0)
    assert store.put_desired("d1", {"pump": "on"}, 1) == 2
    assert store.get_state("d1") == {"desired": {"pump": "on"}, "desired_version": 2,
                                     "reported": {"pump": "on"}, "version": 1}


def test_alarms_merge_and_list(store):
    provision(store)
    provision(store, "d2", tenant="globex")
    store.merge_alarms("d1", [alarm(2, 1000.0, message="hot"), alarm(1, 1001.0, source="t2")], dropped=3)
    store.merge_alarms("d1", [alarm(5, 990.0, severity="critical"), alarm(1, 1010.0)], dropped=1)
    store.merge_alarms("d2", [alarm()], dropped=0)
    listed = store.list_alarms("acme", None)
    assert [(a["source"], a["count"], a["severity"], a["first_seen"], a["last_seen"], a["message"]) for a in listed] \
        == [("t1", 8, "warning", 990.0, 1010.0, "hot"), ("t2", 1, "warning", 1001.0, 1001.0, None)]
    assert listed[0]["tenant"] == "acme" and listed[0]["namespace"] == "ns"
    assert store.get_dropped("acme", None) == {"d1": 4} and store.get_dropped("globex", "d2") == {}


def test_artifacts_are_byte_exact(store):
    provision(store)
    data = bytes(range(256)) * 40
    store.put_artifact("fw-1", "acme", {"version": "1.0.1", "kind": "app"}, data)
    with pytest.raises(Exception) as exc:
        store.put_artifact("fw-1", "acme", {}, b"x")
    assert type(exc.value).__name__ == "AlreadyExists"
    assert store.get_artifact_info("fw-1") == {"name": "fw-1", "tenant": "acme", "size": len(data)}
    assert store.read_artifact("fw-1", 0, len(data)) == data
    assert store.read_artifact("fw-1", 250, 10) == data[250:260]
    assert store.list_manifests("acme") == [{"version": "1.0.1", "kind": "app", "name": "fw-1"}]
    assert store.get_artifact_info("nope") is None


def test_leases(two_handles):
    a, b = two_handles
    assert a.try_lease("job", "A", 30) and not b.try_lease("job", "B", 30)
    assert a.try_lease("job", "A", 30)  # the holder renews
    a.release_lease("job", "B")  # only the holder can release
    assert not b.try_lease("job", "B", 30)
    a.release_lease("job", "A")
    assert b.try_lease("job", "B", 0.2) and b.get_lease("job")["holder"] == "B"
    time.sleep(0.3)
    assert a.try_lease("job", "A", 30)  # an expired lease is taken over


# ---- concurrent writers through two handles: nothing lost, nothing doubled --------------------

def test_concurrent_state_writes_lose_no_update(two_handles):
    a, b = two_handles
    provision(a)
    rounds, writers = 15, 6
    for r in range(rounds):  # every writer names the same current version: exactly one may win
        results = race(writers, lambda i: (a if i % 2 else b).put_reported("d1", {"by": i}, r))
        wins = [x for x in results if isinstance(x, int)]
        assert wins == [r + 1], results
        assert all(isinstance(x, StaleVersion) and x.current == r + 1 for x in results if not isinstance(x, int))
    assert a.get_state("d1")["version"] == rounds


def test_concurrent_alarm_batches_add_every_count(two_handles):
    a, b = two_handles
    provision(a)
    batches = 8

    def post(i):
        for _ in range(5):
            (a if i % 2 else b).merge_alarms("d1", [alarm(1), alarm(2, source="t2")], dropped=1)

    assert race(batches, post) == [None] * batches
    counts = {x["source"]: x["count"] for x in a.list_alarms("acme", "d1")}
    assert counts == {"t1": batches * 5, "t2": batches * 10}
    assert a.get_dropped("acme", "d1") == {"d1": batches * 5}


def test_concurrent_takers_get_a_nonce_or_an_action_once(two_handles):
    a, b = two_handles
    provision(a)
    a.put_nonce("n", "d1", 2000.0)
    taken = race(6, lambda i: (a if i % 2 else b).take_nonce("n"))
    assert taken.count(("d1", 2000.0)) == 1 and taken.count(None) == 5
    for action in ("reboot", "check_update"):
        a.queue_action("d1", action)
    delivered = race(6, lambda i: (a if i % 2 else b).take_actions("d1"))
    assert sorted(x for got in delivered for x in got) == ["check_update", "reboot"]


def test_concurrent_first_meta_write_agrees_on_one_value(two_handles):
    a, b = two_handles
    values = race(6, lambda i: (a if i % 2 else b).set_meta_if_absent("secret", f"v{i}"))
    assert len(set(values)) == 1 and values[0].startswith("v")


# ---- migrations ---------------------------------------------------------------------------

def test_migrations_apply_once_and_reopen_is_a_no_op(target):
    first = open_storage(target)
    try:
        assert schema_version(first) == len(load_migrations())
        assert migrate(first) == []
    finally:
        first.close()
    open_storage(target).close()


def test_concurrent_first_opens_migrate_once(target):
    handles = race(4, lambda i: open_storage(target))
    assert all(not isinstance(h, Exception) for h in handles), handles
    rows = handles[0]._all("SELECT version FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in rows] == [m.version for m in load_migrations()]
    for h in handles:
        h.close()


def test_a_newer_schema_is_refused_with_a_reason(store, target):
    store._write("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", (999, "future", 0.0))
    with pytest.raises(SchemaTooNew, match="version 999.*upgrade the server"):
        open_storage(target)


def test_a_pre_migration_sqlite_file_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)  # the schema the server wrote before migrations, with a device in it
    old.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE devices (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, namespace TEXT NOT NULL,"
        " role TEXT NOT NULL, device_key TEXT NOT NULL, registration TEXT, created_at REAL NOT NULL,"
        " dropped_alarms INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO meta VALUES ('device_token_secret', 'kept');"
        "INSERT INTO devices VALUES ('old-1', 'acme', 'ns', 'relays', 'k', NULL, 1.0, 0);")
    old.commit()
    old.close()
    store = SqliteStorage(str(path))
    try:
        assert store.get_meta("device_token_secret") == "kept" and store.get_device("old-1")["tenant"] == "acme"
        assert store.try_lease("job", "A", 5)  # tables of later migrations exist
    finally:
        store.close()


def test_secret_audit_rows_from_before_migration_5_get_their_tenant(store):
    provision(store, "d1")
    store._write("UPDATE secret_audit SET tenant=NULL")  # as rows written before the column existed
    store.record_secret_audit("reseal", "store", {})
    migration = load_migrations()[4]
    assert migration.name == "secret_audit_tenant"
    with store._txn() as db:  # its backfill statements, on this engine
        for statement in migration.statements(store.DDL_TOKENS):
            if statement.startswith("UPDATE"):
                db.execute(statement)
    assert [(e["subject"], e["tenant"]) for e in store.list_secret_audit()] == [
        ("tenant:acme", "acme"), ("device:d1", "acme"), ("store", None)]


# ---- selection and bad input --------------------------------------------------------------

def test_unknown_url_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported database URL 'mysql'"):
        open_storage("mysql://u@h/db")


def test_wrong_password_fails_with_postgres_reason(postgres):
    bad = postgres.url("postgres").replace(postgres.password, "wrong")
    with pytest.raises(ConnectionError, match="password authentication failed"):
        open_storage(bad)
    assert redact_target(bad) == bad.replace(":wrong@", ":***@")
    assert redact_target("/var/lib/fleet.sqlite") == "/var/lib/fleet.sqlite"
