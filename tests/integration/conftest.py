"""Fixtures for end-to-end tests: a real aiosmtpd relay sink for what the daemon sends,
and a throwaway PostgreSQL cluster for the tests that use one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from postgres_server import PostgresCluster, postgres_available
from smtp_sink import CaptureHandler, start_sink


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL 15 cluster for the whole run (~1 s to start); tests make their own
    databases in it."""
    missing = postgres_available()
    if missing:
        pytest.skip(missing)
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def relay() -> Iterator[Controller]:
    """A running sink the daemon relays its outgoing mail to (`relay.port`)."""
    controller = start_sink()
    yield controller
    controller.stop()


@pytest.fixture
def sink(relay: Controller) -> CaptureHandler:
    """What the relay captured."""
    handler: CaptureHandler = relay.handler
    return handler
