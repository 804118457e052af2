"""Fixtures: one shared server for most tests; tests needing special flags start their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet_devtools.pg_cluster import LocalPostgres
from fleet_harness import Device, FleetServer, api_token


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL for the whole session (tests make their own databases in it)."""
    pg = LocalPostgres().start()
    yield pg
    pg.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    """A shared server with every component enabled, once per storage backend, so every test written
    against it runs on both; tests use fresh device ids so they do not collide."""
    log_dir = tmp_path_factory.mktemp(f"fleet-{request.param}")
    db = log_dir / "fleet.sqlite" if request.param == "sqlite" else request.getfixturevalue("postgres").create_database()
    srv = FleetServer(db, log_dir=log_dir).start()
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

