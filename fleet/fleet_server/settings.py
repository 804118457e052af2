"""Server settings: a JSON config file, overridden by command-line flags."""

from __future__ import annotations

import json
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field

ALL_COMPONENTS = ("discovery", "config", "state", "alarms", "updates", "admin", "console")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled_components: dict[str, bool] = Field(default_factory=lambda: {c: True for c in ALL_COMPONENTS})
    device_token_ttl_s: int = Field(3600, ge=1)
    nonce_ttl_s: int = Field(60, ge=1)
    # when set, registration hands out "<public_url>/api" instead of deriving it from the Host header
    public_url: Optional[str] = None
    ntp_servers: list[str] = Field(default_factory=lambda: ["pool.ntp.org"])
    heartbeat_s: int = Field(30, ge=5, le=3600)
    # inventory: a device not heard from for this long is offline
    offline_after_s: int = Field(90, ge=1)
    # an open, unacknowledged alarm escalates one level each time this much of its age passes
    escalate_after_s: dict[str, int] = Field(default_factory=lambda: {"critical": 300, "warning": 3600})
    escalation_check_s: float = Field(5.0, gt=0, description="how often open alarms are checked")
    webhook_attempts: int = Field(5, ge=1, le=20)
    webhook_backoff_s: float = Field(1.0, gt=0, description="first retry delay; doubles per attempt")
    rollout_check_s: float = Field(5.0, gt=0, description="how often staged rollouts are evaluated")
    # how often background housekeeping (expired-nonce sweep) runs, on one replica at a time
    housekeeping_interval_s: float = Field(60, gt=0, le=86400)
    # HTTPS when a certificate is given; mTLS with one client CA (PEM file) per tenant
    tls_cert_file: Optional[str] = None
    tls_key_file: Optional[str] = None
    mtls_client_cas: dict[str, str] = Field(default_factory=dict)
    mtls_enforce: bool = False
    # registration hands the tenant's API key to a device that asks (want_api_key) only over HTTPS,
    # unless this is set (a development fleet on a trusted network, plain HTTP)
    api_key_over_http: bool = False
    # every request body, any route (413 above it); device documents are a few KB
    max_body_bytes: int = Field(65536, ge=1024)
    # an update artefact uploaded through the admin API (sent base64 in JSON, so the body is ~4/3 of it)
    max_artifact_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # an expired nonce stays this long (then housekeeping sweeps it) so a late proof hears "expired"
    nonce_grace_s: float = Field(3600, ge=0, le=86400)

    def enabled(self) -> list[str]:
        """Enabled component names in canonical order (unknown names are ignored)."""
        return [c for c in ALL_COMPONENTS if self.enabled_components.get(c, False)]


def load_settings(path: str | None) -> Settings:
    if path is None:
        return Settings()
    with open(path, encoding="utf-8") as fh:
        return Settings.model_validate(json.load(fh))
