"""Fixtures shared by every test: a store in a temporary data dir, a fake clock, and the
choice of store the run's tests use (`pytest --store=postgresql`; SQLite by default)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import store_choice
import structlog
from postgres_server import PostgresCluster, postgres_available

from nexusmail.clock import FakeClock
from nexusmail.storage.connections import Storage


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store", choices=(store_choice.SQLITE, store_choice.POSTGRESQL),
        default=store_choice.SQLITE,
        help="the store the tests' daemons and store fixtures use: sqlite (a file in the "
             "test's data dir) or postgresql (a throwaway PostgreSQL 15 cluster)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test is about SQLite itself (its file, its "
        "locking, its pragmas); skipped when the run's store is PostgreSQL")
    if config.getoption("--store") == store_choice.POSTGRESQL:
        missing = postgres_available()
        if missing:
            raise pytest.UsageError(f"--store=postgresql: {missing}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--store") != store_choice.POSTGRESQL:
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))
        elif "postgres_cluster" in getattr(item, "fixturenames", ()):
            # It makes its own PostgreSQL databases whatever the run's store: the SQLite
            # pass has run it exactly as this pass would.
            item.add_marker(pytest.mark.skip(reason="on PostgreSQL in every pass"))


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[store_choice.PostgresDatabases]:
    """The run's one PostgreSQL cluster, started when a test first needs it (~1 s)."""
    databases = store_choice.PostgresDatabases()
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def postgres_cluster(postgres_databases: store_choice.PostgresDatabases) -> PostgresCluster:
    """The throwaway PostgreSQL 15 cluster; tests make their own databases in it."""
    missing = postgres_available()
    if missing:
        pytest.skip(missing)
    return postgres_databases.cluster()


@pytest.fixture(autouse=True)
def _store_choice(request: pytest.FixtureRequest,
                  postgres_databases: store_choice.PostgresDatabases) -> Iterator[None]:
    """The test's daemons and stores open the run's store: SQLite in their data dir, or
    the test module's PostgreSQL database."""
    on_postgresql = request.config.getoption("--store") == store_choice.POSTGRESQL
    stores = store_choice.TestStores(postgres_databases if on_postgresql else None,
                                     request.node.module.__name__)
    with store_choice.active(stores):
        yield


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees no NEXUSMAIL_* variable of the machine's environment and a neutral
    locale (the CLI speaks the locale's language: on an Italian machine its English
    texts would be Italian), and leaves no logging set-up behind (cli.main() binds
    structlog to the stdout pytest captures for that test: a later test would log to a
    closed file)."""
    for name in list(os.environ):
        if name.startswith("NEXUSMAIL_") or name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LANG", "C.UTF-8")
    yield
    structlog.reset_defaults()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    """An open, empty store for the test: SQLite in tmp_path, or PostgreSQL."""
    async with store_choice.store_at(tmp_path) as opened:
        yield opened
