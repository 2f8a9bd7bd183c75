"""The SQLite store: one writer thread with group commit, plus a read-only reader.

One writer: every write goes through `Store.write`, which runs plain synchronous
functions over one sqlite3 connection in one thread (storage.group_commit). Units
queued while a commit is in flight are applied together, each inside its own
SAVEPOINT, and made durable by one COMMIT (one fsync). A unit's future resolves only
after that COMMIT, so an SMTP 250 sent on it is never ahead of the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import structlog

from nexusmail.storage.connections import WriteTx
from nexusmail.storage.group_commit import (
    MAX_GROUP,
    GroupCommitWriter,
    Outcome,
    StorageError,
)

log = structlog.get_logger(__name__)

# StorageError and MAX_GROUP live with the writer both stores share; importers of
# this module keep finding them here.
__all__ = ["MAX_GROUP", "StorageError", "Store", "WriteFn", "connect", "migrate",
           "prepare_writer"]

T = TypeVar("T")

# What the write-ahead log file is cut back to once a checkpoint lets SQLite start it
# over. Day to day it stays far below (a checkpoint runs every ~4 MB); without a limit
# the file keeps the size of the largest transaction ever made, and a migration that
# copies every stored mail would leave it as large as the store.
WAL_SIZE_LIMIT = 64 * 1024 * 1024

# A write unit: runs in the writer's transaction on whichever store (SQLite's
# connection, or the PostgreSQL store's adapter: both are a WriteTx).
WriteFn = Callable[[WriteTx], T]

def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A sqlite3 connection with the pragmas every nexusmail connection uses."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a COMMIT is on disk when it returns, WAL or not, so no 250
        # is sent for mail a power cut could still lose.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    return conn


def prepare_writer(conn: sqlite3.Connection) -> None:
    """Set up a migrated connection for the store's writer (`Store.apply_group`)."""
    # Each write unit runs in a savepoint, whose journal (the pages as they were before
    # the unit changed them) SQLite keeps in memory up to 64 KiB, then in a temporary
    # file: a mail's unit changes more than that, so every unit wrote its pages to a
    # file made and deleted at each commit, some 85 write calls per mail in the writer.
    # In memory, a unit's journal is the size of the pages it changes and is freed
    # when the unit ends; durability is the WAL's and unchanged. Not set for the
    # migrations or a store move, whose big sorts may need the temporary files.
    conn.execute("PRAGMA temp_store = MEMORY")


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the numbered migrations not applied yet; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
    )
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    folder = resources.files("nexusmail.tickets") / "migrations"
    applied = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql") or entry.name in done:
            continue
        script = entry.read_text(encoding="utf-8")
        conn.executescript(
            "BEGIN IMMEDIATE;\n" + script + "\nINSERT INTO schema_migrations VALUES "
            f"('{entry.name}', datetime('now'));\nCOMMIT;"
        )
        applied.append(entry.name)
    return applied


class Store(GroupCommitWriter):
    """Owns the database file: the writer thread (group commit) and the reader."""

    def __init__(self, db_path: Path) -> None:
        super().__init__()
        self.db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self._reader: aiosqlite.Connection | None = None

    async def open(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await asyncio.to_thread(connect, self.db_path)
        applied = await asyncio.to_thread(migrate, self._conn)
        if applied:
            log.info("store.migrated", migrations=applied, db=str(self.db_path))
        await asyncio.to_thread(prepare_writer, self._conn)
        self.start_writer()
        self._reader = await aiosqlite.connect(f"file:{self.db_path}?mode=ro", uri=True)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA busy_timeout = 5000")

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self.stop_writer()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection (WAL lets it read while the writer writes)."""
        if self._reader is None:
            raise StorageError("the store is not open")
        yield self._reader

    def apply_group(self, fns: list[Callable[[Any], Any]]) -> list[Outcome]:
        assert self._conn is not None
        conn = self._conn
        outcomes: list[Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn in fns:
                outcomes.append(_run_in_savepoint(conn, fn))
            conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            _rollback_quietly(conn)
            log.error("store.commit_failed", error=str(exc), units=len(fns))
            return [(False, StorageError(f"storage failed: {exc}"))] * len(fns)
        return [(ok, StorageError(str(value)) if not ok and _is_disk_trouble(value) else value)
                for ok, value in outcomes]


def _run_in_savepoint(conn: sqlite3.Connection, fn: Callable[..., Any]) -> tuple[bool, Any]:
    conn.execute("SAVEPOINT unit")
    try:
        value = fn(conn)
    except sqlite3.OperationalError as exc:
        # Disk full or I/O trouble hits the whole transaction: let the group fail.
        if _is_storage_failure(exc):
            raise
        conn.execute("ROLLBACK TO unit")
        conn.execute("RELEASE unit")
        return False, exc
    except Exception as exc:  # a unit's own failure must not sink its neighbours
        conn.execute("ROLLBACK TO unit")
        conn.execute("RELEASE unit")
        return False, exc
    conn.execute("RELEASE unit")
    return True, value


def _is_storage_failure(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in {sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY} or (
        "disk" in str(exc) or "full" in str(exc)
    )


def _rollback_quietly(conn: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # no transaction may be open
        conn.execute("ROLLBACK")


def _is_disk_trouble(value: object) -> bool:
    return isinstance(value, sqlite3.OperationalError) and _is_storage_failure(value)
