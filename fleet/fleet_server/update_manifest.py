"""Update manifests: what `fleet-admin publish` accepts and what devices are offered."""

from __future__ import annotations

import hashlib
import re
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

VERSION_PATTERN = r"^\d+(\.\d+)*$"


def version_key(version: str) -> tuple[int, ...]:
    """Dotted numeric versions compare field by field as integers ("1.10" > "1.9")."""
    if not re.match(VERSION_PATTERN, version):
        raise ValueError(f"version {version!r} is not dotted numeric (e.g. 1.2.3)")
    return tuple(int(p) for p in version.split("."))


class PublishManifest(BaseModel):
    """The manifest file given to `fleet-admin publish` (the server adds `url`)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["bundle", "image"]
    version: str = Field(pattern=VERSION_PATTERN)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(min_length=1, description="opaque to the server; the device verifies it")
    min_version: Optional[str] = Field(None, pattern=VERSION_PATTERN,
                                       description="devices older than this are not offered the update")
    role: Optional[str] = Field(None, description="offer only to devices provisioned with this role")


class ManifestOut(BaseModel):
    kind: Literal["bundle", "image"]
    version: str
    size: int
    sha256: str
    signature: str
    url: str
    min_version: Optional[str] = None


def check_file_matches(manifest: PublishManifest, data: bytes) -> None:
    if len(data) != manifest.size:
        raise ValueError(f"size: manifest says {manifest.size}, file has {len(data)} bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256:
        raise ValueError(f"sha256: manifest says {manifest.sha256}, file hashes to {digest}")


def artifact_name(tenant: str, manifest: PublishManifest) -> str:
    # names are global in the URL space, so the tenant is part of them
    return f"{tenant}-{manifest.kind}-{manifest.version}-{manifest.sha256[:12]}"


def pick_update(manifests: list[dict], current: str, role: str) -> dict | None:
    """The newest manifest newer than `current` that this device may take, or None."""
    now = version_key(current)
    best = None
    for m in manifests:
        if m.get("role") and m["role"] != role:
            continue
        if version_key(m["version"]) <= now:
            continue
        if m.get("min_version") and now < version_key(m["min_version"]):
            continue
        if best is None or version_key(m["version"]) > version_key(best["version"]):
            best = m
    return best
