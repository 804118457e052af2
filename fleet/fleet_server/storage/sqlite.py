"""SQLite implementation of the Storage interface (stdlib sqlite3, one file, WAL).

Calls are synchronous and short; one connection guarded by a lock serves the event loop
and the admin CLI alike. WAL lets the CLI write while the server reads the same file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from .base import AlreadyExists, NotFound, StaleVersion
from .sqlite_operator import OPERATOR_SCHEMA, OperatorSqlMixin

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    tenant TEXT PRIMARY KEY, api_key TEXT NOT NULL, roles TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, namespace TEXT NOT NULL, role TEXT NOT NULL,
    device_key TEXT NOT NULL, registration TEXT, created_at REAL NOT NULL,
    dropped_alarms INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY, device_id TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heartbeats (device_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT NOT NULL, action TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    device_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    device_id TEXT PRIMARY KEY,
    reported TEXT NOT NULL DEFAULT '{}', version INTEGER NOT NULL DEFAULT 0,
    desired TEXT NOT NULL DEFAULT '{}', desired_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS alarms (
    device_id TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL,
    severity TEXT NOT NULL, count INTEGER NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, message TEXT,
    PRIMARY KEY (device_id, type, source));
CREATE TABLE IF NOT EXISTS artifacts (
    name TEXT PRIMARY KEY, tenant TEXT NOT NULL, manifest TEXT NOT NULL,
    size INTEGER NOT NULL, data BLOB NOT NULL, created_at REAL NOT NULL);
"""


class SqliteStorage(OperatorSqlMixin):
    def __init__(self, path: str):
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves where a read-modify-write must be atomic
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        self._db.executescript(OPERATOR_SCHEMA)

    # ---- helpers -----------------------------------------------------------
    def _one(self, sql: str, args=()) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args=()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args=()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    class _Txn:
        """BEGIN IMMEDIATE ... COMMIT under the connection lock (rollback on error)."""

        def __init__(self, store: "SqliteStorage"):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type, exc, tb):
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()
            return False

    def _txn(self) -> "_Txn":
        return SqliteStorage._Txn(self)

    # ---- lifecycle -----------------------------------------------------------
    def ping(self) -> None:
        self._one("SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- meta ------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key=?", (key,))
        return row["value"] if row else None

    def set_meta_if_absent(self, key: str, value: str) -> str:
        with self._txn() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()["value"]

    # ---- tenants -----------------------------------------------------------------
    def get_tenant(self, tenant: str) -> dict | None:
        row = self._one("SELECT * FROM tenants WHERE tenant=?", (tenant,))
        if row is None:
            return None
        return {"tenant": row["tenant"], "api_key": row["api_key"], "roles": json.loads(row["roles"])}

    def ensure_tenant(self, tenant: str, api_key: str, roles: dict[str, list[str]]) -> dict:
        with self._txn() as db:
            db.execute(
                "INSERT OR IGNORE INTO tenants (tenant, api_key, roles) VALUES (?, ?, ?)",
                (tenant, api_key, json.dumps(roles)),
            )
        return self.get_tenant(tenant)

    # ---- devices -------------------------------------------------------------------
    def create_device(self, device: dict) -> None:
        try:
            self._write(
                "INSERT INTO devices (id, tenant, namespace, role, device_key, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (device["id"], device["tenant"], device["namespace"], device["role"],
                 device["device_key"], time.time()),
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(device["id"]) from exc

    def get_device(self, device_id: str) -> dict | None:
        row = self._one("SELECT * FROM devices WHERE id=?", (device_id,))
        if row is None:
            return None
        device = {k: row[k] for k in ("id", "tenant", "namespace", "role", "device_key", "created_at")}
        device["registration"] = json.loads(row["registration"]) if row["registration"] else None
        return device

    def update_registration(self, device_id: str, registration: dict) -> None:
        cur = self._write("UPDATE devices SET registration=? WHERE id=?", (json.dumps(registration), device_id))
        if cur.rowcount == 0:
            raise NotFound(device_id)

    # ---- nonces ----------------------------------------------------------------------
    def put_nonce(self, nonce: str, device_id: str, expires_at: float) -> None:
        with self._txn() as db:
            # expired nonces are useless; sweep them here so the table stays small
            db.execute("DELETE FROM nonces WHERE expires_at < ?", (time.time() - 3600,))
            db.execute("INSERT INTO nonces (nonce, device_id, expires_at) VALUES (?, ?, ?)",
                       (nonce, device_id, expires_at))

    def take_nonce(self, nonce: str) -> tuple[str, float] | None:
        with self._txn() as db:
            row = db.execute("SELECT device_id, expires_at FROM nonces WHERE nonce=?", (nonce,)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM nonces WHERE nonce=?", (nonce,))
            return row["device_id"], row["expires_at"]

    # ---- heartbeats and actions ---------------------------------------------------------
    def record_heartbeat(self, device_id: str, heartbeat: dict) -> None:
        self._write("INSERT OR REPLACE INTO heartbeats (device_id, body) VALUES (?, ?)",
                    (device_id, json.dumps(heartbeat)))

    def get_heartbeat(self, device_id: str) -> dict | None:
        row = self._one("SELECT body FROM heartbeats WHERE device_id=?", (device_id,))
        return json.loads(row["body"]) if row else None

    def queue_action(self, device_id: str, action: str) -> None:
        self._write("INSERT INTO actions (device_id, action) VALUES (?, ?)", (device_id, action))

    def take_actions(self, device_id: str) -> list[str]:
        with self._txn() as db:
            rows = db.execute("SELECT seq, action FROM actions WHERE device_id=? ORDER BY seq",
                              (device_id,)).fetchall()
            if rows:
                db.execute("DELETE FROM actions WHERE device_id=? AND seq<=?", (device_id, rows[-1]["seq"]))
        # one reboot is as good as two: deliver each action once, in first-queued order
        return list(dict.fromkeys(r["action"] for r in rows))

    # ---- configuration ---------------------------------------------------------------------
    def get_config(self, device_id: str) -> tuple[int, dict]:
        row = self._one("SELECT version, body FROM configs WHERE device_id=?", (device_id,))
        return (row["version"], json.loads(row["body"])) if row else (0, {})

    def put_config(self, device_id: str, config: dict) -> int:
        with self._txn() as db:
            row = db.execute("SELECT version FROM configs WHERE device_id=?", (device_id,)).fetchone()
            version = (row["version"] if row else 0) + 1
            db.execute("INSERT OR REPLACE INTO configs (device_id, version, body) VALUES (?, ?, ?)",
                       (device_id, version, json.dumps(config)))
            return version

    # ---- state ---------------------------------------------------------------------------------
    def get_state(self, device_id: str) -> dict:
        row = self._one("SELECT * FROM states WHERE device_id=?", (device_id,))
        if row is None:
            return {"desired": {}, "desired_version": 0, "reported": {}, "version": 0}
        return {"desired": json.loads(row["desired"]), "desired_version": row["desired_version"],
                "reported": json.loads(row["reported"]), "version": row["version"]}

    def put_reported(self, device_id: str, reported: dict, expected_version: int) -> int:
        with self._txn() as db:
            db.execute("INSERT OR IGNORE INTO states (device_id) VALUES (?)", (device_id,))
            current = db.execute("SELECT version FROM states WHERE device_id=?", (device_id,)).fetchone()["version"]
            if current != expected_version:
                raise StaleVersion(current)
            db.execute("UPDATE states SET reported=?, version=? WHERE device_id=?",
                       (json.dumps(reported), current + 1, device_id))
            return current + 1

    def put_desired(self, device_id: str, desired: dict, expected_version: int | None) -> int:
        with self._txn() as db:
            db.execute("INSERT OR IGNORE INTO states (device_id) VALUES (?)", (device_id,))
            current = db.execute("SELECT desired_version FROM states WHERE device_id=?",
                                 (device_id,)).fetchone()["desired_version"]
            if expected_version is not None and current != expected_version:
                raise StaleVersion(current)
            db.execute("UPDATE states SET desired=?, desired_version=? WHERE device_id=?",
                       (json.dumps(desired), current + 1, device_id))
            return current + 1

    # ---- alarms ------------------------------------------------------------------------------------
    def merge_alarms(self, device_id: str, alarms: list[dict], dropped: int) -> None:
        with self._txn() as db:
            for a in alarms:
                # dedup key is (device, type, source): counts add up, the seen window widens
                db.execute(
                    """INSERT INTO alarms (device_id, type, source, severity, count, first_seen, last_seen, message)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (device_id, type, source) DO UPDATE SET
                         severity=excluded.severity,
                         count=alarms.count + excluded.count,
                         first_seen=MIN(alarms.first_seen, excluded.first_seen),
                         last_seen=MAX(alarms.last_seen, excluded.last_seen),
                         message=COALESCE(excluded.message, alarms.message)""",
                    (device_id, a["type"], a["source"], a["severity"], a["count"],
                     a["first_seen"], a["last_seen"], a.get("message")),
                )
            if dropped:
                db.execute("UPDATE devices SET dropped_alarms=dropped_alarms+? WHERE id=?", (dropped, device_id))

    def list_alarms(self, tenant: str, device_id: str | None) -> list[dict]:
        sql = ("SELECT a.*, d.tenant, d.namespace FROM alarms a JOIN devices d ON d.id=a.device_id"
               " WHERE d.tenant=?")
        args: list = [tenant]
        if device_id is not None:
            sql += " AND a.device_id=?"
            args.append(device_id)
        rows = self._all(sql + " ORDER BY a.last_seen DESC, a.device_id, a.type, a.source", args)
        return [dict(r) for r in rows]

    def get_dropped(self, tenant: str, device_id: str | None) -> dict[str, int]:
        sql = "SELECT id, dropped_alarms FROM devices WHERE tenant=? AND dropped_alarms>0"
        args: list = [tenant]
        if device_id is not None:
            sql += " AND id=?"
            args.append(device_id)
        return {r["id"]: r["dropped_alarms"] for r in self._all(sql, args)}

    # ---- artefacts -----------------------------------------------------------------------------------
    def put_artifact(self, name: str, tenant: str, manifest: dict, data: bytes) -> None:
        try:
            self._write(
                "INSERT INTO artifacts (name, tenant, manifest, size, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, tenant, json.dumps(manifest), len(data), sqlite3.Binary(data), time.time()),
            )
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(name) from exc

    def list_manifests(self, tenant: str) -> list[dict]:
        rows = self._all("SELECT name, manifest FROM artifacts WHERE tenant=? ORDER BY created_at", (tenant,))
        return [dict(json.loads(r["manifest"]), name=r["name"]) for r in rows]

    def get_artifact_info(self, name: str) -> dict | None:
        row = self._one("SELECT name, tenant, size FROM artifacts WHERE name=?", (name,))
        return dict(row) if row else None

    def read_artifact(self, name: str, start: int, length: int) -> bytes:
        # substr on a BLOB is byte-indexed (1-based) and avoids loading the whole artefact
        row = self._one("SELECT substr(data, ?, ?) AS part FROM artifacts WHERE name=?", (start + 1, length, name))
        if row is None:
            raise NotFound(name)
        return bytes(row["part"])
