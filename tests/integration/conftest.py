"""Fixtures for end-to-end tests: a real aiosmtpd relay sink for what the daemon sends
(the throwaway PostgreSQL cluster is tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from smtp_sink import CaptureHandler, start_sink


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
