"""Pieces every CLI command group uses: exit codes, error printing, the store (or a whole
ingest pipeline) opened for one command, a table."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from pydantic import ValidationError

from nexusmail.admin.api.models import describe_validation_error
from nexusmail.admin.pages.form_errors import validation_message
from nexusmail.blobs.open import open_blob_store
from nexusmail.cli.language import say, speech, text
from nexusmail.clock import Clock, SystemClock
from nexusmail.config import ConfigError, Settings
from nexusmail.i18n import Msg, message_of, msg
from nexusmail.ingest.accept import Ingest
from nexusmail.storage.connections import Storage
from nexusmail.storage.target import database_target, open_store
from nexusmail.tickets.reply_tokens import load_reply_keys
from nexusmail.tickets.store import StorageError

T = TypeVar("T")
# What a command returns, as its process exit status: scripts and systemd units test it.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What opening or using the store may raise, on either store: main() turns each into one
# error line naming the store, never a traceback.
STORE_ERRORS = (StorageError, sqlite3.Error, psycopg.Error, OSError)

# A command, and the two parser builders main() hands to each group's register().
Command = Callable[[argparse.Namespace, Settings], int]
AddCommand = Callable[[Any, str, Command, str, str], argparse.ArgumentParser]
AddGroup = Callable[[Any, str, argparse.ArgumentParser, str, str], Any]


def fail(message: str | Msg, code: int = EXIT_FAILED) -> int:
    """Print "nexusmail: message" (translated) on stderr and return `code`, for
    `return fail(...)`."""
    print(f"nexusmail: {text(message)}", file=sys.stderr)
    return code


def refuse(exc: BaseException, code: int = EXIT_FAILED) -> int:
    """`fail` with what a refusal of the domain says (its own words, translated)."""
    return fail(message_of(exc), code)


def validation_problem(exc: ValidationError) -> str | Msg:
    """The fields a command's values fail, each named: the API's own words in English
    (what scripts already match), the admin page's catalogued sentences otherwise."""
    if speech().is_source:
        return describe_validation_error(exc)
    return validation_message(exc)


def with_store(settings: Settings, fn: Callable[[Storage], Awaitable[T]], *,
               create: bool = False) -> T:
    """Open the store the settings name (SQLite or PostgreSQL), run `fn` on it, close it.

    Beside a running daemon this takes turns with its writer: through SQLite's lock, or
    as one more client of the PostgreSQL server. Only commands that set a new
    installation up (`create`) may start an empty SQLite store: run from the wrong
    directory, any other command would find nothing in a database it just made, and
    leave it behind, instead of saying where it looked."""
    if not create:
        require_store(settings)

    async def run() -> T:
        store = open_store(settings)
        await store.open()
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


def with_ingest(settings: Settings, fn: Callable[[Ingest, Storage], Awaitable[T]], *,
                clock: Clock | None = None, create: bool = False) -> T:
    """Run `fn` with an Ingest built as the daemon builds it (parsing in this process);
    only an import (`create`) may start a new, empty store."""
    if not create:
        require_store(settings)  # before the key file, which loading may create
    keys = load_reply_keys(settings)  # blocking file read, before the loop runs
    blobs = open_blob_store(settings)

    async def run(store: Storage) -> T:
        ingest = Ingest(store, blobs, settings, clock or SystemClock(), reply_keys=keys)
        return await fn(ingest, store)

    try:
        return with_store(settings, run, create=create)
    finally:
        blobs.close()


def require_store(settings: Settings) -> None:
    """StorageError, saying where it looked, when the data dir holds no SQLite database.

    A PostgreSQL database is named outright by its URL: connecting says whether it is
    there, and the daemon's own migrations make an empty one ready."""
    target = database_target(settings)
    path = target.sqlite_path
    if path is not None and not path.exists():
        raise StorageError(msg("there is no nexusmail database {path} (data dir: "
                               "{data_dir}); run this where the daemon runs, or give "
                               "--config with its [storage] data_dir",
                               path=str(path), data_dir=str(settings.storage.data_dir)))


def store_failure(settings: Settings, exc: Exception) -> int:
    """The error line for a store that could not be used, naming which one (never its
    password: the URL the settings hold has none)."""
    try:
        where = database_target(settings).describe()
    except ConfigError:
        where = settings.storage.data_dir.as_posix()
    return fail(msg("cannot use the store {where}: {problem}", where=where,
                    problem=message_of(exc)))


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """Columns padded to their widest cell; "(none)" for no rows. The column titles are
    marked with `N_` and translated here."""
    if not rows:
        say(msg("(none)"))
        return
    header = [speech().label(title) for title in header]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
