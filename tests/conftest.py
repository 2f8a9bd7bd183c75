"""Fixtures shared by every test: a store in a temporary data dir, a fake clock."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from nexusmail.clock import FakeClock
from nexusmail.tickets.store import Store


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test sees no NEXUSMAIL_* variable of the machine's environment, and leaves
    no logging set-up behind (cli.main() binds structlog to the stdout pytest captures
    for that test: a later test would log to a closed file)."""
    for name in list(os.environ):
        if name.startswith("NEXUSMAIL_"):
            monkeypatch.delenv(name)
    yield
    structlog.reset_defaults()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "nexusmail.sqlite3") as opened:
        yield opened
