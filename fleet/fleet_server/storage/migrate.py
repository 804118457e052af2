"""Versioned schema migrations: numbered SQL files in migrations/, applied once each, in order.

One text serves both engines. The few spellings that differ are tokens a backend fills in
(`DDL_TOKENS` on its class). Adding a table or column means adding the next `NNNN_name.sql`,
never editing an applied one. The whole run is one transaction under the backend's schema lock,
so replicas starting together apply each migration exactly once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer server than this one."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, tokens: dict[str, str]) -> list[str]:
        text = self.sql
        for token, spelling in tokens.items():
            text = text.replace(token, spelling)
        # no statement of ours has a ';' inside a literal, so splitting on it is exact
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
        return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.iterdir()):
        m = _FILE_NAME.match(path.name)
        if m is None:
            if path.suffix == ".sql":
                raise ValueError(f"migration file {path.name!r} is not named NNNN_name.sql")
            continue
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ValueError(f"migrations must be numbered 1..n without gaps, found {versions}")
    return found


def migrate(store, migrations: list[Migration] | None = None) -> list[int]:
    """Bring the schema up to date; returns the versions applied now (empty when already current)."""
    migrations = load_migrations() if migrations is None else migrations
    applied_now = []
    with store._txn() as db:
        store._lock_schema(db)
        db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY,"
                   " name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")
        done = {r["version"] for r in db.execute("SELECT version FROM schema_migrations").fetchall()}
        newest_known = migrations[-1].version if migrations else 0
        if done and max(done) > newest_known:
            raise SchemaTooNew(f"database schema is at version {max(done)}, this server knows up to "
                               f"{newest_known}: upgrade the server before using this database")
        for m in migrations:
            if m.version in done:
                continue
            for statement in m.statements(store.DDL_TOKENS):
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                       (m.version, m.name, time.time()))
            applied_now.append(m.version)
    return applied_now


def schema_version(store) -> int:
    row = store._one("SELECT MAX(version) AS v FROM schema_migrations")
    return int(row["v"] or 0) if row else 0
