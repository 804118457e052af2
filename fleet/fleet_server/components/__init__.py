"""The one place where components are registered.

Each component module exposes `make_router()` and `ready(ctx)`; only enabled components are
imported-and-routed, and only they take part in /health/readyz.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from fastapi import APIRouter

from ..context import AppContext

# name -> module under fleet_server.components; order is the order routes appear in the OpenAPI document
COMPONENT_MODULES = {
    "discovery": "discovery",
    "config": "config",
    "state": "state",
    "alarms": "alarms",
    "updates": "updates",
    "admin": "admin",
    "console": "console",
}


@dataclass
class Component:
    name: str
    router: APIRouter
    ready: Callable[[AppContext], None]  # raises when a dependency is unavailable


def load_components(names: list[str]) -> list[Component]:
    out = []
    for name in names:
        module = importlib.import_module(f"{__name__}.{COMPONENT_MODULES[name]}")
        out.append(Component(name, module.make_router(), module.ready))
    return out
