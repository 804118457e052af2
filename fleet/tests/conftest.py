"""Fixtures: one shared server for most tests; tests needing special flags start their own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet_devtools.pg_cluster import LocalPostgres
from fleet_devtools.fleet_harness import Device, FleetServer, api_token


@pytest.fixture(scope="session", autouse=True)
def shared_keyring(tmp_path_factory):
    """One master-key file for every server and CLI of the session (inherited through the
    environment), as replicas on one database must share it; without it a SQLite file gets its own."""
    os.environ["FLEET_SECRETS"] = f"file:{tmp_path_factory.mktemp('keys') / 'fleet-keys.json'}"
    yield
    os.environ.pop("FLEET_SECRETS", None)


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



@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_db(request, tmp_path_factory):
    """A fresh database of each backend for a module's own server (tests that need special settings)."""
    if request.param == "sqlite":
        return tmp_path_factory.mktemp("db-sqlite") / "fleet.sqlite"
    return request.getfixturevalue("postgres").create_database()
