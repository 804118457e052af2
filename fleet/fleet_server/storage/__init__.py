"""Storage interface and its implementations; `open_storage` picks one from the --db value."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from ..secret_box import SecretBox
from ..secrets_backend import load_backend

from .base import AlreadyExists, NotFound, StaleVersion, StateChanged, Storage
from .migrate import SchemaTooNew
from .secret_rows import SECRETS_ENV
from .sqlite import SqliteStorage

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_storage(target: str, pool_size: int = 4, secrets: str | None = None, actor: str = "fleet") -> Storage:
    """A `postgresql://` URL opens PostgreSQL (psycopg 3); anything else is a SQLite file path.
    `secrets` names the master-key backend (file:PATH or env; default $FLEET_SECRETS, else a
    keyring file beside a SQLite database); `actor` is who the secret audit trail names."""
    box = SecretBox(load_backend(secrets or os.environ.get(SECRETS_ENV) or None, target))
    if target.startswith(POSTGRES_SCHEMES):
        try:
            from .postgres import PostgresStorage
        except ImportError as exc:  # the driver is an optional dependency: say which one
            raise ValueError(f"a PostgreSQL --db needs psycopg: pip install 'fleet-server[postgres]' ({exc})")
        return PostgresStorage(target, pool_size=pool_size, box=box, actor=actor)
    if "://" in target:
        raise ValueError(f"unsupported database URL {target.split('://')[0]!r}:// "
                         f"(use a SQLite file path or a postgresql:// URL)")
    return SqliteStorage(target, box=box, actor=actor)


def redact_target(target: str) -> str:
    """The --db value fit for a log line: a URL loses its password."""
    if not target.startswith(POSTGRES_SCHEMES):
        return target
    parts = urlsplit(target)
    if parts.password is None:
        return target
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


__all__ = ["AlreadyExists", "NotFound", "SchemaTooNew", "StaleVersion", "StateChanged", "Storage", "SqliteStorage",
           "open_storage", "redact_target"]
