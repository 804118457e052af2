"""Secrets at rest: AES-256-GCM under the backend's current master key, bound to where they live.

A sealed value is `enc:v1:<key id>:<base64(nonce | ciphertext+tag)>`; the associated data names
the field and row (e.g. `device_key:pico-1`), so a sealed value copied into another row or field
does not open. Values written before sealing existed open as they are, so a database upgrades
in place; `fleet-admin secrets-reseal` then seals them (and re-seals under a new master key).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .secrets_backend import SecretsBackend

PREFIX = "enc:v1:"


class SecretBox:
    def __init__(self, backend: SecretsBackend):
        self.backend = backend

    def seal(self, plaintext: str, context: str) -> str:
        key_id = self.backend.current_key_id()
        nonce = os.urandom(12)
        sealed = AESGCM(self.backend.key(key_id)).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, value: str | None, context: str) -> str | None:
        if value is None or not value.startswith(PREFIX):
            return value  # written before sealing: `secrets-reseal` seals it
        key_id, _, blob = value[len(PREFIX):].partition(":")
        raw = base64.b64decode(blob)
        try:
            return AESGCM(self.backend.key(key_id)).decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise ValueError(f"sealed {context.split(':')[0]} does not open: wrong master key or tampered")

    def needs_reseal(self, value: str | None) -> bool:
        """Plain text, or sealed under a master key that is no longer the current one."""
        if value is None:
            return False
        return not value.startswith(f"{PREFIX}{self.backend.current_key_id()}:")
