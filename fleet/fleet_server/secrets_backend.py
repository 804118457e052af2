"""Where the master keys that seal secrets at rest come from: a keyring file or the environment.

A backend answers two questions: which key seals new values (`current_key_id`) and what the key
of a given id is (`key`), so values sealed under an older master key still open after rotation.

    file:/etc/fleet/keys.json   {"current": "k2", "keys": {"k1": "<64 hex>", "k2": "<64 hex>"}}
                                (created 0600 with one key when absent; `add_key` rotates)
    env                         FLEET_SECRETS_KEYS="k1:<64 hex>,k2:<64 hex>", the last one current

A Vault backend would implement the same two methods over Vault's transit engine or KV store:
it needs the Vault address and CA, an auth method fit for a server (AppRole or Kubernetes) with
token renewal, a policy allowing read of the key path (or transit encrypt/decrypt), caching of
the keys it fetched so a Vault outage does not stop a running server, and key versions mapped to
our key ids so rotation there is rotation here.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Protocol

ENV_VAR = "FLEET_SECRETS_KEYS"


class SecretsBackend(Protocol):
    def current_key_id(self) -> str: ...
    def key(self, key_id: str) -> bytes: ...


def _parse_key(key_id: str, hex_key: str) -> bytes:
    try:
        key = bytes.fromhex(hex_key)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"master key {key_id!r} must be 64 hex characters (32 bytes)")
    return key


class _Keyring:
    """Keys by id and the current id, however they were loaded."""

    _keys: dict[str, bytes]
    _current: str
    source = "the keyring"

    def current_key_id(self) -> str:
        return self._current

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise ValueError(f"value sealed with master key {key_id!r}, which {self.source} does not hold")


class FileKeyring(_Keyring):
    def __init__(self, path: str):
        self.path = path
        if not os.path.exists(path):
            self._write({"current": "k1", "keys": {"k1": secrets.token_hex(32)}}, create=True)
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
            self._keys = {k: _parse_key(k, v) for k, v in doc["keys"].items()}
            self._current = doc["current"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"keyring {self.path}: {exc}") from exc
        if self._current not in self._keys:
            raise ValueError(f"keyring {self.path}: current key {self._current!r} is not in keys")

    def _write(self, doc: dict, create: bool = False) -> None:
        tmp = f"{self.path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1)
        try:
            if create:  # link fails if another process created the keyring first: then theirs is used
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    pass
            else:
                os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def add_key(self) -> str:
        """A new master key becomes current; the old ones stay to open what they sealed."""
        new_id = f"k{len(self._keys) + 1}"
        while new_id in self._keys:
            new_id += "x"
        doc = {"current": new_id, "keys": {k: v.hex() for k, v in self._keys.items()}}
        doc["keys"][new_id] = secrets.token_hex(32)
        self._write(doc)
        self._load()
        return new_id


class EnvKeyring(_Keyring):
    source = ENV_VAR

    def __init__(self, value: str | None = None):
        value = os.environ.get(ENV_VAR, "") if value is None else value
        pairs = [p.strip() for p in value.split(",") if p.strip()]
        if not pairs:
            raise ValueError(f"{ENV_VAR} is empty: set it to k1:<64 hex>[,k2:<64 hex>...]")
        self._keys = {}
        for pair in pairs:
            key_id, sep, hex_key = pair.partition(":")
            if not sep:
                raise ValueError(f"{ENV_VAR}: {key_id[:8]}... is not id:hexkey")
            self._keys[key_id] = _parse_key(key_id, hex_key)
        self._current = pairs[-1].partition(":")[0]



def load_backend(spec: str | None, db_target: str) -> SecretsBackend:
    """`file:PATH`, `env`, or (None) the default: a keyring file beside a SQLite database."""
    if spec is None:
        if "://" in db_target:
            raise ValueError("a database server needs an explicit secrets backend shared by every replica: "
                             f"--secrets file:PATH or --secrets env (with {ENV_VAR})")
        return FileKeyring(db_target + ".keys")
    if spec == "env":
        return EnvKeyring()
    if spec.startswith("file:") and len(spec) > 5:
        return FileKeyring(spec[5:])
    raise ValueError(f"unknown secrets backend {spec!r} (file:PATH or env)")
