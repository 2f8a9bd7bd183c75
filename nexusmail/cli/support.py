"""Pieces every offline CLI command uses: the store opened for one command, a table."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nexusmail.config import Settings
from nexusmail.paths import database_path
from nexusmail.tickets.store import Store

T = TypeVar("T")


def with_store(settings: Settings, fn: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store (its writer takes turns with a running daemon's through SQLite's
    lock), run `fn` on it, close it."""
    async def run() -> T:
        async with Store(database_path(settings)) as store:
            return await fn(store)

    return asyncio.run(run())


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell; "(none)" for no rows."""
    if not rows:
        print("(none)")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
