"""Fixtures shared by every test: a store in a temporary data dir, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from nexusmail.clock import FakeClock
from nexusmail.tickets.store import Store


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Configuration made by one test (cli.main() binds structlog to the stdout pytest
    captures for that test) must not leak: a later test would log to a closed file."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "nexusmail.sqlite3") as opened:
        yield opened
