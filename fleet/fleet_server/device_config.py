"""DeviceConfig: the configuration tree a device accepts, shared with the firmware as JSON Schema.

Every field is optional at the top level; unknown keys are rejected at every level so a typo
is an error, not a silently ignored setting. Types are strict ("5" is not an int) because the
device validates the same JSON against the exported schema.

Run `python -m fleet_server.device_config` to print the JSON Schema
(the repo copy is fleet_server/device_config.schema.json).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_STRICT = ConfigDict(extra="forbid", strict=True)


class Rbac(BaseModel):
    model_config = _STRICT
    roles: dict[str, list[str]] = Field(default_factory=dict)


class RateLimit(BaseModel):
    model_config = _STRICT
    per_token_rps: float = Field(gt=0)
    per_address_rps: float = Field(gt=0)
    burst: int = Field(ge=1)


TimeOfDay = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
                                  description='"HH:MM" or "HH:MM:SS", UTC')]


class ScheduleWindow(BaseModel):
    """One daily window: the relay goes ON at `on` and OFF at `off` (over midnight when off < on)."""
    model_config = _STRICT
    on: TimeOfDay
    off: TimeOfDay

    @field_validator("off")
    @classmethod
    def _off_differs_from_on(cls, off: str, info: ValidationInfo) -> str:
        on = info.data.get("on")
        if on is not None and _day_seconds(on) == _day_seconds(off):
            raise ValueError("on and off must differ")
        return off


def _day_seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")] + [0]
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


class Relay(BaseModel):
    model_config = _STRICT
    pin: int = Field(ge=0, le=28)
    active_low: bool = False
    safe_state: Literal["LOW", "HIGH"] = "LOW"
    max_on_s: int = Field(0, ge=0)
    schedule: list[ScheduleWindow] = Field(default_factory=list, max_length=4)


class SensorField(BaseModel):
    model_config = _STRICT
    source: Literal["adc0", "adc1", "adc2", "adc3", "temp", "sim"]
    rate_hz: float = Field(gt=0, le=1000)
    threshold_high: Optional[float] = None
    threshold_low: Optional[float] = None


class Sensors(BaseModel):
    model_config = _STRICT
    fields: dict[str, SensorField]
    max_clients: int = Field(4, ge=1, le=16)


RelayName = Annotated[str, Field(min_length=1)]


class DeviceConfig(BaseModel):
    model_config = ConfigDict(
        extra="forbid", strict=True,
        json_schema_extra={"description": "Device configuration. Interlock names must be keys of `relays` "
                                          "(checked in code on both sides; JSON Schema cannot express it)."},
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    heartbeat_s: int = Field(30, ge=5, le=3600)
    enabled_components: dict[str, bool] = Field(default_factory=dict)
    ntp_servers: list[str] = Field(default_factory=list)
    rbac: Rbac = Field(default_factory=Rbac)
    rate_limit: Optional[RateLimit] = None
    relays: dict[str, Relay] = Field(default_factory=dict)
    interlocks: list[Annotated[list[RelayName], Field(min_length=2, max_length=2)]] = Field(default_factory=list)
    sensors: Optional[Sensors] = None
    mask_fields: list[str] = Field(default_factory=list)

    @field_validator("interlocks")
    @classmethod
    def _interlocks_name_known_relays(cls, pairs: list[list[str]], info: ValidationInfo) -> list[list[str]]:
        if "relays" not in info.data:  # relays itself was refused: its own error says why
            return pairs
        relays = info.data["relays"] or {}  # relays is declared first, so already validated
        for i, pair in enumerate(pairs):
            for j, name in enumerate(pair):
                if name not in relays:
                    raise ValueError(f"[{i}][{j}] names unknown relay {name!r}")
        return pairs


def validate_config(raw: object) -> dict:
    """Validate and return the config as the caller wrote it (defaults are the device's job)."""
    return DeviceConfig.model_validate(raw).model_dump(mode="json", exclude_unset=True)


def json_schema() -> dict:
    schema = DeviceConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def main() -> None:
    json.dump(json_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
