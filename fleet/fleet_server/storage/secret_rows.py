"""The storage side of secrets at rest: keys sealed in their rows, rotation with a grace period
(the previous key stays accepted until its deadline), re-sealing, and the audit trail. Mixed into
SqliteStorage, so PostgreSQL runs the same SQL."""

from __future__ import annotations

import json
import os
import time

from ..secret_box import SecretBox
from ..secrets_backend import load_backend
from .base import NotFound

SECRETS_ENV = "FLEET_SECRETS"
TOKEN_SECRET_KEY = "device_token_secret"  # the meta row holding the device-token signing secret  # the backend spec when none is passed: file:PATH or env


def default_box(target: str) -> SecretBox:
    return SecretBox(load_backend(os.environ.get(SECRETS_ENV) or None, target))


# (table, key column, previous-key column, context prefix, row id column)
_SEALED = (("devices", "device_key", "prev_device_key", "device_key", "id"),
           ("tenants", "api_key", "prev_api_key", "api_key", "tenant"))


class SecretRows:
    box: SecretBox
    actor: str

    def _open_keys(self, row, column: str, prev_column: str, context: str) -> tuple[str, list[str]]:
        """The current key, and every key accepted now (current, then the previous one in its grace)."""
        current = self.box.open(row[column], context)
        accepted = [current]
        until = row["prev_key_until"]
        if row[prev_column] is not None and until is not None and until > time.time():
            accepted.append(self.box.open(row[prev_column], context))
        return current, accepted

    def _audit(self, db, action: str, subject: str, detail: dict, tenant: str | None = None,
               actor: str | None = None) -> None:
        """`tenant`: whose secret it is (None: server-wide); `actor`: who asked, when not this handle's
        own actor (an admin API caller), recorded as "<caller> via <handle actor>"."""
        who = self.actor if actor in (None, self.actor) else f"{actor} via {self.actor}"
        db.execute("INSERT INTO secret_audit (at, actor, action, subject, detail, tenant) VALUES (?, ?, ?, ?, ?, ?)",
                   (time.time(), who, action, subject, json.dumps(detail, sort_keys=True), tenant))

    def record_secret_audit(self, action: str, subject: str, detail: dict, tenant: str | None = None) -> None:
        with self._txn() as db:
            self._audit(db, action, subject, detail, tenant)

    def list_secret_audit(self, subject: str | None = None, limit: int = 200, tenant: str | None = None) -> list[dict]:
        """The newest `limit` entries, oldest first; of one subject and/or one tenant when given."""
        where, args = [], []
        for column, value in (("subject", subject), ("tenant", tenant)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = "SELECT * FROM secret_audit" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._all(sql + " ORDER BY seq DESC LIMIT ?", [*args, limit])
        return [dict(r, detail=json.loads(r["detail"])) for r in reversed(rows)]

    def rotate_device_key(self, device_id: str, new_key: str, grace_s: float, actor: str | None = None) -> float:
        return self._rotate("devices", "device_key", "prev_device_key", "id", device_id,
                            f"device_key:{device_id}", f"device:{device_id}", new_key, grace_s, actor)

    def rotate_tenant_key(self, tenant: str, new_key: str, grace_s: float, actor: str | None = None) -> float:
        return self._rotate("tenants", "api_key", "prev_api_key", "tenant", tenant,
                            f"api_key:{tenant}", f"tenant:{tenant}", new_key, grace_s, actor)

    def _rotate(self, table, column, prev_column, id_column, row_id, context, subject, new_key, grace_s,
                actor) -> float:
        """The current key becomes the previous one, accepted until now + grace_s; returns that time.
        With grace_s 0 the old key is dropped at once (nothing kept past its deadline)."""
        until = time.time() + grace_s
        keep = grace_s > 0
        with self._txn() as db:
            rows = db.execute(
                f"UPDATE {table} SET {prev_column}={column if keep else 'NULL'}, prev_key_until=?, {column}=?"
                f" WHERE {id_column}=? RETURNING tenant",
                (until if keep else None, self.box.seal(new_key, context), row_id)).fetchall()
            if not rows:
                raise NotFound(row_id)
            self._audit(db, f"rotate_{column}", subject, {"grace_s": grace_s, "previous_accepted_until": until},
                        rows[0]["tenant"], actor)
        return until

    def reseal_secrets(self) -> dict[str, int]:
        """Seal every plain or old-master-key value under the current master key; returns counts."""
        counts = {}
        with self._txn() as db:
            for table, column, prev_column, prefix, id_column in _SEALED:
                n = 0
                for row in db.execute(f"SELECT {id_column} AS id, {column} AS cur, {prev_column} AS prev"
                                      f" FROM {table}").fetchall():
                    context = f"{prefix}:{row['id']}"
                    if self.box.needs_reseal(row["cur"]) or self.box.needs_reseal(row["prev"]):
                        cur, prev = (self.box.open(row[c], context) for c in ("cur", "prev"))
                        db.execute(f"UPDATE {table} SET {column}=?, {prev_column}=? WHERE {id_column}=?",
                                   (self.box.seal(cur, context), None if prev is None else self.box.seal(prev, context),
                                    row["id"]))
                        n += 1
                counts[table] = n
            counts["meta"] = 0
            for row in db.execute("SELECT key, value FROM meta WHERE key IN (?)", (TOKEN_SECRET_KEY,)).fetchall():
                if self.box.needs_reseal(row["value"]):
                    context = f"meta:{row['key']}"
                    db.execute("UPDATE meta SET value=? WHERE key=?",
                               (self.box.seal(self.box.open(row["value"], context), context), row["key"]))
                    counts["meta"] += 1
            self._audit(db, "reseal", "store", {"counts": counts, "key_id": self.box.backend.current_key_id()})
        return counts
