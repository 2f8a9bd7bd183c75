"""Pieces every CLI command group uses: exit codes, error printing, the store (or a whole
ingest pipeline) opened for one command, a table."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from nexusmail.clock import Clock, SystemClock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Ingest
from nexusmail.paths import blobs_path, database_path
from nexusmail.tickets.blobs import BlobStore
from nexusmail.tickets.reply_tokens import load_reply_keys
from nexusmail.tickets.store import StorageError, Store

T = TypeVar("T")
# What a command returns, as its process exit status: scripts and systemd units test it.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# A command, and the two parser builders main() hands to each group's register().
Command = Callable[[argparse.Namespace, Settings], int]
AddCommand = Callable[[Any, str, Command, str, str], argparse.ArgumentParser]
AddGroup = Callable[[Any, str, argparse.ArgumentParser, str, str], Any]


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """Print "nexusmail: message" on stderr and return `code`, for `return fail(...)`."""
    print(f"nexusmail: {message}", file=sys.stderr)
    return code


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


def with_ingest(settings: Settings, fn: Callable[[Ingest, Store], Awaitable[T]], *,
                clock: Clock | None = None, create: bool = False) -> T:
    """Run `fn` with an Ingest built as the daemon builds it (parsing in this process);
    only an import (`create`) may start a new, empty store."""
    if not create:
        require_store(settings)
    keys = load_reply_keys(settings)  # blocking file read, before the loop runs

    async def run() -> T:
        async with Store(database_path(settings)) as store:
            ingest = Ingest(store, BlobStore(blobs_path(settings)), settings,
                            clock or SystemClock(), reply_keys=keys)
            return await fn(ingest, store)

    return asyncio.run(run())


def require_store(settings: Settings) -> None:
    """StorageError, saying where it looked, when the data dir holds no database."""
    if settings.storage.database_url.startswith("postgres"):
        raise StorageError("the offline commands work on the SQLite store only so far; this "
                           "configuration uses PostgreSQL ([storage] database_url): use "
                           "the API or the admin page")
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
