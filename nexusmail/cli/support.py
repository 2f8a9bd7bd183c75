"""Pieces every offline CLI command uses: the store opened for one command, a table."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nexusmail.config import Settings
from nexusmail.paths import database_path
from nexusmail.tickets.store import StorageError, Store

T = TypeVar("T")


def with_store(settings: Settings, fn: Callable[[Store], Awaitable[T]], *,
               create: bool = False) -> T:
    """Open the store (its writer takes turns with a running daemon's through SQLite's
    lock), run `fn` on it, close it.

    Only commands that set a new installation up (`create`) may start an empty store:
    run from the wrong directory, any other command would find nothing in a database it
    just made, and leave it behind, instead of saying where it looked."""
    path = database_path(settings)
    if not create:
        require_store(settings)

    async def run() -> T:
        async with Store(path) as store:
            return await fn(store)

    return asyncio.run(run())


def require_store(settings: Settings) -> None:
    """StorageError, saying where it looked, when the data dir holds no database."""
    path = database_path(settings)
    if not path.exists():
        raise StorageError(f"there is no nexusmail database {path} (data dir: "
                           f"{settings.storage.data_dir}); run this where the daemon runs, "
                           "or give --config with its [storage] data_dir")


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell; "(none)" for no rows."""
    if not rows:
        print("(none)")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
