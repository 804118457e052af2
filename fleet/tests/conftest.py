"""Fixtures: one shared server for most tests; tests needing special flags start their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_harness import Device, FleetServer, api_token


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A shared server with every component enabled; tests use fresh device ids so they do not collide."""
    db = tmp_path_factory.mktemp("fleet") / "fleet.sqlite"
    srv = FleetServer(db).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def device(server) -> Device:
    return Device(server)


@pytest.fixture
def admin_token(server, device) -> str:
    return api_token(server.db, device.tenant, device.namespace, "admin")


@pytest.fixture
def tmp_db(tmp_path) -> Path:
    return tmp_path / "fleet.sqlite"

