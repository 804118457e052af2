"""The operator's side of the storage: inventory, audit log, alarm lifecycle, webhooks, rollouts.

Mixed into SqliteStorage, so PostgresStorage runs the same SQL (the rules are in sqlite.py's
docstring: shared subset, upserts rather than read-then-write, since replicas write concurrently).
The tables are migrations/0004_operator.sql. A webhook's signing secret is sealed like device keys.
"""

from __future__ import annotations

import json

from .base import AlreadyExists, NotFound, StateChanged

# tables keyed by device id that de-provisioning empties (devices itself last)
_DEVICE_TABLES = ("nonces", "heartbeats", "actions", "configs", "states", "alarms", "device_seen",
                  "alarm_status")


ANY = object()  # put_alarm_status without a condition


def _webhook_context(tenant: str, name: str) -> str:
    return f"webhook_secret:{tenant}/{name}"


class OperatorSqlMixin:
    """Mixed into SqliteStorage; uses its _one/_all/_write/_txn helpers, its box and _audit."""

    # ---- devices: listing, de-provisioning, last heard from --------------------------------
    def list_devices(self, tenant: str, namespace: str | None = None, role: str | None = None,
                     seen_after: float | None = None, offline_before: float | None = None,
                     limit: int = 100, offset: int = 0, device_id: str | None = None) -> tuple[list[dict], int]:
        """Devices of a tenant with `last_seen` (or None), filtered, in id order; and the total matched."""
        where, args = ["d.tenant=?"], [tenant]
        if namespace is not None:
            where.append("d.namespace=?")
            args.append(namespace)
        if role is not None:
            where.append("d.role=?")
            args.append(role)
        if device_id is not None:
            where.append("d.id=?")
            args.append(device_id)
        if seen_after is not None:  # online: heard from since
            where.append("s.last_seen >= ?")
            args.append(seen_after)
        if offline_before is not None:  # offline: never heard from, or not since
            where.append("(s.last_seen IS NULL OR s.last_seen < ?)")
            args.append(offline_before)
        base = " FROM devices d LEFT JOIN device_seen s ON s.device_id=d.id WHERE " + " AND ".join(where)
        total = self._one("SELECT COUNT(*) AS n" + base, args)["n"]
        rows = self._all("SELECT d.id, d.tenant, d.namespace, d.role, d.created_at, d.registration,"
                         " s.last_seen" + base + " ORDER BY d.id LIMIT ? OFFSET ?", [*args, limit, offset])
        out = []
        for r in rows:
            device = dict(r)
            device["registration"] = json.loads(r["registration"]) if r["registration"] else None
            out.append(device)
        return out, total

    def mark_seen(self, device_id: str, at: float) -> None:
        # GREATEST: a late write from another replica never moves last_seen backwards
        self._write("INSERT INTO device_seen (device_id, last_seen) VALUES (?, ?) ON CONFLICT (device_id)"
                    " DO UPDATE SET last_seen=GREATEST(device_seen.last_seen, excluded.last_seen)", (device_id, at))

    def count_online(self, seen_after: float) -> dict[tuple[str, str], int]:
        """(tenant, role) -> devices heard from since `seen_after`, every tenant."""
        rows = self._all("SELECT d.tenant, d.role, COUNT(*) AS n FROM devices d JOIN device_seen s"
                         " ON s.device_id=d.id WHERE s.last_seen >= ? GROUP BY d.tenant, d.role", (seen_after,))
        return {(r["tenant"], r["role"]): r["n"] for r in rows}

    def delete_device(self, device_id: str) -> None:
        with self._txn() as db:
            row = db.execute("SELECT tenant FROM devices WHERE id=?", (device_id,)).fetchone()
            if row is None:
                raise NotFound(device_id)
            for table in _DEVICE_TABLES:
                db.execute(f"DELETE FROM {table} WHERE device_id=?", (device_id,))
            db.execute("DELETE FROM devices WHERE id=?", (device_id,))
            self._audit(db, "delete_device_key", f"device:{device_id}", {}, row["tenant"])

    # ---- tenants: role table and API key ------------------------------------------------------
    def set_tenant_roles(self, tenant: str, roles: dict[str, list[str]]) -> None:
        if self._write("UPDATE tenants SET roles=? WHERE tenant=?", (json.dumps(roles), tenant)).rowcount == 0:
            raise NotFound(tenant)

    # ---- audit log ----------------------------------------------------------------------------
    def append_audit(self, entry: dict) -> None:
        self._write("INSERT INTO audit_log (at, tenant, actor, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    (entry["at"], entry["tenant"], entry["actor"], entry["action"], entry["target"],
                     json.dumps(entry.get("detail") or {}, sort_keys=True)))

    def list_audit(self, tenant: str, action_prefix: str | None = None, limit: int = 100,
                   offset: int = 0) -> list[dict]:
        """Newest first."""
        sql, args = "SELECT * FROM audit_log WHERE tenant=?", [tenant]
        if action_prefix:  # substr, not LIKE: no wildcards to escape, case-sensitive on both engines
            sql += " AND substr(action, 1, ?)=?"
            args.extend([len(action_prefix), action_prefix])
        rows = self._all(sql + " ORDER BY seq DESC LIMIT ? OFFSET ?", [*args, limit, offset])
        return [dict(r, detail=json.loads(r["detail"])) for r in rows]

    # ---- alarm lifecycle ------------------------------------------------------------------------
    def get_alarm_status(self, device_id: str, type_: str, source: str) -> dict | None:
        row = self._one("SELECT * FROM alarm_status WHERE device_id=? AND type=? AND source=?",
                        (device_id, type_, source))
        return dict(row) if row else None

    def put_alarm_status(self, status: dict, expected_changed_at=ANY) -> None:
        """Insert or replace the lifecycle row of one (device, type, source). With expected_changed_at,
        only if the row is as the caller read it: None = there is no row yet, a time = its changed_at;
        otherwise StateChanged (another replica moved the alarm in between)."""
        key = (status["device_id"], status["type"], status["source"])
        values = (status["status"], status["opened_at"], status["changed_at"], status["changed_by"],
                  status.get("escalation", 0))
        insert = ("INSERT INTO alarm_status (status, opened_at, changed_at, changed_by, escalation,"
                  " device_id, type, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, type, source)")
        if expected_changed_at is ANY:
            self._write(insert + " DO UPDATE SET status=excluded.status, opened_at=excluded.opened_at,"
                        " changed_at=excluded.changed_at, changed_by=excluded.changed_by,"
                        " escalation=excluded.escalation", (*values, *key))
            return
        with self._txn() as db:
            if expected_changed_at is None:
                rows = db.execute(insert + " DO NOTHING RETURNING status", (*values, *key)).fetchall()
            else:
                rows = db.execute("UPDATE alarm_status SET status=?, opened_at=?, changed_at=?, changed_by=?,"
                                  " escalation=? WHERE device_id=? AND type=? AND source=? AND changed_at=?"
                                  " RETURNING status", (*values, *key, expected_changed_at)).fetchall()
            if not rows:
                row = db.execute("SELECT status FROM alarm_status WHERE device_id=? AND type=? AND source=?",
                                 key).fetchone()
                raise StateChanged(row["status"] if row else None)

    def list_alarm_records(self, tenant: str | None, device_id: str | None = None,
                           statuses: list[str] | None = None) -> list[dict]:
        """Alarms with their lifecycle (status open when none was recorded yet), newest first."""
        sql = ("SELECT a.*, d.tenant, d.namespace, COALESCE(s.status, 'open') AS status,"
               " COALESCE(s.opened_at, a.first_seen) AS opened_at, s.changed_at, s.changed_by,"
               " COALESCE(s.escalation, 0) AS escalation"
               " FROM alarms a JOIN devices d ON d.id=a.device_id LEFT JOIN alarm_status s"
               " ON s.device_id=a.device_id AND s.type=a.type AND s.source=a.source WHERE 1=1")
        args: list = []
        if tenant is not None:
            sql += " AND d.tenant=?"
            args.append(tenant)
        if device_id is not None:
            sql += " AND a.device_id=?"
            args.append(device_id)
        if statuses:
            sql += " AND COALESCE(s.status, 'open') IN (" + ",".join("?" * len(statuses)) + ")"
            args.extend(statuses)
        rows = self._all(sql + " ORDER BY a.last_seen DESC, a.device_id, a.type, a.source", args)
        return [dict(r) for r in rows]

    # ---- webhooks ----------------------------------------------------------------------------------
    def put_webhook(self, hook: dict) -> None:
        secret = self.box.seal(hook["secret"], _webhook_context(hook["tenant"], hook["name"]))
        self._write("INSERT INTO webhooks (tenant, name, url, secret, format, min_severity) VALUES (?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, name) DO UPDATE SET url=excluded.url, secret=excluded.secret,"
                    " format=excluded.format, min_severity=excluded.min_severity",
                    (hook["tenant"], hook["name"], hook["url"], secret, hook["format"], hook["min_severity"]))

    def delete_webhook(self, tenant: str, name: str) -> None:
        if self._write("DELETE FROM webhooks WHERE tenant=? AND name=?", (tenant, name)).rowcount == 0:
            raise NotFound(name)

    def list_webhooks(self, tenant: str) -> list[dict]:
        rows = self._all("SELECT * FROM webhooks WHERE tenant=? ORDER BY name", (tenant,))
        return [dict(r, secret=self.box.open(r["secret"], _webhook_context(tenant, r["name"]))) for r in rows]

    # ---- rollouts ------------------------------------------------------------------------------------
    def create_rollout(self, rollout: dict) -> None:
        # one statement: of two replicas creating the same name, one gets AlreadyExists
        with self._txn() as db:
            rows = db.execute("INSERT INTO rollouts (name, tenant, artifact, body, created_at, state)"
                              " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING name",
                              (rollout["name"], rollout["tenant"], rollout["artifact"], json.dumps(rollout),
                               rollout["created_at"], rollout.get("state"))).fetchall()
        if not rows:
            raise AlreadyExists(rollout["name"])

    def update_rollout(self, rollout: dict, expected_state: str | None = None) -> None:
        """Replace the rollout; with expected_state, only while it is still in that state (else
        StateChanged with the state it has now): a halt on one replica is never overwritten by
        the evaluator's update on another."""
        sql, args = "UPDATE rollouts SET body=?, state=? WHERE name=?", [json.dumps(rollout), rollout.get("state"),
                                                                         rollout["name"]]
        if expected_state is not None:
            sql += " AND state=?"
            args.append(expected_state)
        with self._txn() as db:
            if db.execute(sql + " RETURNING name", args).fetchall():
                return
            row = db.execute("SELECT state FROM rollouts WHERE name=?", (rollout["name"],)).fetchone()
        if row is None:
            raise NotFound(rollout["name"])
        raise StateChanged(row["state"])

    def list_rollouts(self, tenant: str | None) -> list[dict]:
        sql, args = "SELECT body FROM rollouts", []
        if tenant is not None:
            sql += " WHERE tenant=?"
            args.append(tenant)
        return [json.loads(r["body"]) for r in self._all(sql + " ORDER BY created_at, name", args)]
