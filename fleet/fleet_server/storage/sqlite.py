"""SQLite implementation of the Storage interface (stdlib sqlite3, one file, WAL).

Calls are synchronous and short; one connection guarded by a lock serves the event loop
and the admin CLI alike. WAL lets the CLI write while the server reads the same file.

The SQL in the methods below is the one text both backends run: PostgresStorage (postgres.py)
inherits these methods and swaps only the connection helpers (`_one`, `_all`, `_write`, `_txn`).
So write new methods in the subset both engines speak: `?` placeholders, `INSERT ... ON CONFLICT`
(not `INSERT OR IGNORE/REPLACE`), `RETURNING`, `GREATEST`/`LEAST` (registered below for SQLite),
`except self.IntegrityError`; and make a read-modify-write one conditional statement (`UPDATE ...
WHERE version=?`) rather than a read then a write, since on PostgreSQL another replica may write
in between. New tables go in a new file under migrations/.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager

from .base import MAX_NONCES_PER_DEVICE, AlreadyExists, NotFound, StaleVersion
from .migrate import migrate
from .secret_rows import SecretBox, SecretRows, default_box
from .sqlite_operator import OperatorSqlMixin


class SqliteStorage(SecretRows, OperatorSqlMixin):
    IntegrityError = sqlite3.IntegrityError
    DB_SYSTEM = "sqlite"  # OpenTelemetry's name for the engine
    DDL_TOKENS = {"@AUTOINC_PK@": "INTEGER PRIMARY KEY AUTOINCREMENT", "@BLOB@": "BLOB"}

    def __init__(self, path: str, box: SecretBox | None = None, actor: str = "fleet"):
        self.box = box or default_box(path)  # seals device and tenant keys at rest
        self.actor = actor  # who the secret audit trail names for this handle's operations
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves where a read-modify-write must be atomic
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        # PostgreSQL's names for the two-argument min/max, so one SQL text serves both engines
        self._db.create_function("greatest", 2, max, deterministic=True)
        self._db.create_function("least", 2, min, deterministic=True)
        migrate(self)

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

    @contextmanager
    def _txn(self):
        """BEGIN IMMEDIATE ... COMMIT under the connection lock (rollback on error)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _lock_schema(self, db) -> None:
        """Migrations already run under BEGIN IMMEDIATE, which excludes every other writer."""

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
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value))
            return db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()["value"]

    # ---- tenants -----------------------------------------------------------------
    def get_tenant(self, tenant: str) -> dict | None:
        row = self._one("SELECT * FROM tenants WHERE tenant=?", (tenant,))
        if row is None:
            return None
        api_key, accepted = self._open_keys(row, "api_key", "prev_api_key", f"api_key:{tenant}")
        return {"tenant": row["tenant"], "api_key": api_key, "api_keys": accepted, "roles": json.loads(row["roles"])}

    def ensure_tenant(self, tenant: str, api_key: str, roles: dict[str, list[str]]) -> dict:
        with self._txn() as db:
            created = db.execute(
                "INSERT INTO tenants (tenant, api_key, roles) VALUES (?, ?, ?) ON CONFLICT (tenant) DO NOTHING"
                " RETURNING tenant",
                (tenant, self.box.seal(api_key, f"api_key:{tenant}"), json.dumps(roles)),
            ).fetchall()
            if created:
                self._audit(db, "create_tenant_key", f"tenant:{tenant}", {}, tenant)
        return self.get_tenant(tenant)

    # ---- devices -------------------------------------------------------------------
    def create_device(self, device: dict) -> None:
        try:
            with self._txn() as db:
                db.execute(
                    "INSERT INTO devices (id, tenant, namespace, role, device_key, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (device["id"], device["tenant"], device["namespace"], device["role"],
                     self.box.seal(device["device_key"], f"device_key:{device['id']}"), time.time()),
                )
                self._audit(db, "create_device_key", f"device:{device['id']}", {"tenant": device["tenant"]},
                            device["tenant"])
        except self.IntegrityError as exc:
            raise AlreadyExists(device["id"]) from exc

    def get_device(self, device_id: str) -> dict | None:
        row = self._one("SELECT * FROM devices WHERE id=?", (device_id,))
        if row is None:
            return None
        device = {k: row[k] for k in ("id", "tenant", "namespace", "role", "created_at")}
        device["device_key"], device["device_keys"] = self._open_keys(
            row, "device_key", "prev_device_key", f"device_key:{device_id}")
        device["registration"] = json.loads(row["registration"]) if row["registration"] else None
        return device

    def update_registration(self, device_id: str, registration: dict) -> None:
        cur = self._write("UPDATE devices SET registration=? WHERE id=?", (json.dumps(registration), device_id))
        if cur.rowcount == 0:
            raise NotFound(device_id)

    # ---- nonces ----------------------------------------------------------------------
    def put_nonce(self, nonce: str, device_id: str, expires_at: float) -> None:
        with self._txn() as db:
            # a device needs one nonce at a time: keep its newest few, not one per call (expired
            # ones beyond that are swept by the housekeeping job, background.py)
            db.execute("DELETE FROM nonces WHERE device_id = ? AND nonce NOT IN (SELECT nonce FROM nonces"
                       " WHERE device_id = ? ORDER BY expires_at DESC LIMIT ?)",
                       (device_id, device_id, MAX_NONCES_PER_DEVICE - 1))
            db.execute("INSERT INTO nonces (nonce, device_id, expires_at) VALUES (?, ?, ?)",
                       (nonce, device_id, expires_at))

    def take_nonce(self, nonce: str) -> tuple[str, float] | None:
        # one statement: of two replicas taking the same nonce at once, exactly one gets the row
        with self._txn() as db:
            rows = db.execute("DELETE FROM nonces WHERE nonce=? RETURNING device_id, expires_at",
                              (nonce,)).fetchall()
        return (rows[0]["device_id"], rows[0]["expires_at"]) if rows else None

    def sweep_nonces(self, expired_before: float) -> int:
        return self._write("DELETE FROM nonces WHERE expires_at < ?", (expired_before,)).rowcount

    # ---- heartbeats and actions ---------------------------------------------------------
    def record_heartbeat(self, device_id: str, heartbeat: dict) -> None:
        self._write("INSERT INTO heartbeats (device_id, body) VALUES (?, ?)"
                    " ON CONFLICT (device_id) DO UPDATE SET body=excluded.body",
                    (device_id, json.dumps(heartbeat)))

    def get_heartbeat(self, device_id: str) -> dict | None:
        row = self._one("SELECT body FROM heartbeats WHERE device_id=?", (device_id,))
        return json.loads(row["body"]) if row else None

    def queue_action(self, device_id: str, action: str) -> None:
        self._write("INSERT INTO actions (device_id, action) VALUES (?, ?)", (device_id, action))

    def take_actions(self, device_id: str) -> list[str]:
        # deleting is the read: two heartbeats at once (two replicas) cannot both deliver an action
        with self._txn() as db:
            rows = db.execute("DELETE FROM actions WHERE device_id=? RETURNING seq, action",
                              (device_id,)).fetchall()
        # one reboot is as good as two: deliver each action once, in first-queued order
        return list(dict.fromkeys(r["action"] for r in sorted(rows, key=lambda r: r["seq"])))

    # ---- configuration ---------------------------------------------------------------------
    def get_config(self, device_id: str) -> tuple[int, dict]:
        row = self._one("SELECT version, body FROM configs WHERE device_id=?", (device_id,))
        return (row["version"], json.loads(row["body"])) if row else (0, {})

    def put_config(self, device_id: str, config: dict) -> int:
        with self._txn() as db:
            return db.execute(
                "INSERT INTO configs (device_id, version, body) VALUES (?, 1, ?) ON CONFLICT (device_id)"
                " DO UPDATE SET version=configs.version + 1, body=excluded.body RETURNING version",
                (device_id, json.dumps(config))).fetchall()[0]["version"]

    # ---- state ---------------------------------------------------------------------------------
    def get_state(self, device_id: str) -> dict:
        row = self._one("SELECT * FROM states WHERE device_id=?", (device_id,))
        if row is None:
            return {"desired": {}, "desired_version": 0, "reported": {}, "version": 0}
        return {"desired": json.loads(row["desired"]), "desired_version": row["desired_version"],
                "reported": json.loads(row["reported"]), "version": row["version"]}

    def put_reported(self, device_id: str, reported: dict, expected_version: int) -> int:
        return self._bump_state(device_id, "reported", "version", json.dumps(reported), expected_version)

    def put_desired(self, device_id: str, desired: dict, expected_version: int | None) -> int:
        return self._bump_state(device_id, "desired", "desired_version", json.dumps(desired), expected_version)

    def _bump_state(self, device_id: str, column: str, version_column: str, body: str,
                    expected_version: int | None) -> int:
        """Write one half of the state and bump its version, only if the version is the expected one.

        The check and the write are one UPDATE, so of two concurrent writers naming the same version
        (even on two replicas) exactly one succeeds and the other sees StaleVersion.
        """
        sql = f"UPDATE states SET {column}=?, {version_column}={version_column} + 1 WHERE device_id=?"
        args: list = [body, device_id]
        if expected_version is not None:
            sql += f" AND {version_column}=?"
            args.append(expected_version)
        with self._txn() as db:
            db.execute("INSERT INTO states (device_id) VALUES (?) ON CONFLICT (device_id) DO NOTHING", (device_id,))
            rows = db.execute(sql + f" RETURNING {version_column} AS v", args).fetchall()
            if not rows:
                current = db.execute(f"SELECT {version_column} AS v FROM states WHERE device_id=?",
                                     (device_id,)).fetchone()["v"]
                raise StaleVersion(current)
            return rows[0]["v"]

    # ---- alarms ------------------------------------------------------------------------------------
    def merge_alarms(self, device_id: str, alarms: list[dict], dropped: int) -> None:
        with self._txn() as db:
            # a fixed row order: two batches for one device cannot lock its alarm rows crosswise
            for a in sorted(alarms, key=lambda a: (a["type"], a["source"])):
                # dedup key is (device, type, source): counts add up, the seen window widens
                db.execute(
                    """INSERT INTO alarms (device_id, type, source, severity, count, first_seen, last_seen, message)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (device_id, type, source) DO UPDATE SET
                         severity=excluded.severity,
                         count=alarms.count + excluded.count,
                         first_seen=LEAST(alarms.first_seen, excluded.first_seen),
                         last_seen=GREATEST(alarms.last_seen, excluded.last_seen),
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
                (name, tenant, json.dumps(manifest), len(data), bytes(data), time.time()),
            )
        except self.IntegrityError as exc:
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

    # ---- leases (background work on one replica at a time) ----------------------------------------
    def try_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease `name` for `holder` until now + ttl_s; False while another holds it."""
        now = time.time()
        with self._txn() as db:
            rows = db.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE"
                " SET holder=excluded.holder, expires_at=excluded.expires_at"
                " WHERE leases.holder=excluded.holder OR leases.expires_at < ? RETURNING holder",
                (name, holder, now + ttl_s, now)).fetchall()
        return bool(rows)

    def release_lease(self, name: str, holder: str) -> None:
        self._write("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

    def get_lease(self, name: str) -> dict | None:
        row = self._one("SELECT name, holder, expires_at FROM leases WHERE name=?", (name,))
        return dict(row) if row else None
