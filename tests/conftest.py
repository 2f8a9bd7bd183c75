"""Fixtures shared by every test: a store in a temporary data dir, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nexusmail.clock import FakeClock
from nexusmail.tickets.store import Store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "nexusmail.sqlite3") as opened:
        yield opened
