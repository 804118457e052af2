"""Where the device-token secret comes from: a file (created 0600 if absent) or the database."""

from __future__ import annotations

import os

from .auth import new_key
from .storage import Storage

from .storage.secret_rows import TOKEN_SECRET_KEY as META_KEY


def load_server_secret(storage: Storage, secret_file: str | None) -> str:
    if secret_file is None:
        # kept in the database, sealed, so a restart (or another replica) keeps issued tokens valid
        context = f"meta:{META_KEY}"
        proposed = storage.box.seal(new_key(), context)
        stored = storage.set_meta_if_absent(META_KEY, proposed)
        if stored == proposed:
            storage.record_secret_audit("create_token_secret", "server", {})
        return storage.box.open(stored, context)
    if not os.path.exists(secret_file):
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_key() + "\n")
    with open(secret_file, encoding="utf-8") as fh:
        secret = fh.read().strip()
    if not secret:
        raise ValueError(f"secret file {secret_file} is empty")
    return secret
