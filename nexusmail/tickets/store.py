"""The store: one writer thread with group commit, plus read-only aiosqlite readers.

One writer: every write goes through `Store.write`, which runs plain
synchronous functions over one sqlite3 connection in one thread. Units queued while
a commit is in flight are applied together, each inside its own SAVEPOINT, and made
durable by one COMMIT (one fsync). A unit's future resolves only after that COMMIT,
so an SMTP 250 sent on it is never ahead of the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import structlog

from nexusmail.storage.connections import WriteTx

log = structlog.get_logger(__name__)

T = TypeVar("T")
# A write unit: runs in the writer's transaction on whichever store (SQLite's
# connection, or the PostgreSQL store's adapter: both are a WriteTx).
WriteFn = Callable[[WriteTx], T]

# Units applied in one transaction at most; bounds the latency one commit adds.
MAX_GROUP = 64


class StorageError(Exception):
    """The store could not make a change durable; the caller must not acknowledge."""


@dataclass
class _Unit:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


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
    return conn


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


class Store:
    """Owns the database file: the writer thread and the readers."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._queue: queue.SimpleQueue[_Unit | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self.commits = 0  # how many COMMITs the writer made (group commit shows here)

    async def open(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await asyncio.to_thread(connect, self.db_path)
        applied = await asyncio.to_thread(migrate, self._conn)
        if applied:
            log.info("store.migrated", migrations=applied, db=str(self.db_path))
        self._thread = threading.Thread(target=self._run_writer, name="nexusmail-writer")
        self._thread.start()
        self._reader = await aiosqlite.connect(f"file:{self.db_path}?mode=ro", uri=True)
        self._reader.row_factory = aiosqlite.Row
        await self._reader.execute("PRAGMA busy_timeout = 5000")

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def write(self, fn: WriteFn[T]) -> T:
        """Run `fn(conn)` in the writer's transaction; return once it is committed.

        Raises what `fn` raised (its changes rolled back), or StorageError when the
        commit itself failed (disk full, I/O error).
        """
        if self._thread is None:
            raise StorageError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Unit(fn, future, loop))
        return await future

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection (WAL lets it read while the writer writes)."""
        if self._reader is None:
            raise StorageError("the store is not open")
        yield self._reader

    def _run_writer(self) -> None:
        assert self._conn is not None
        conn = self._conn
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop_after = _STOP in group
            units = [u for u in group if isinstance(u, _Unit)]
            self._apply_group(conn, units)
            if stop_after:
                return

    def _apply_group(self, conn: sqlite3.Connection, units: list[_Unit]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for unit in units:
                outcomes.append(_run_in_savepoint(conn, unit.fn))
            conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            _rollback_quietly(conn)
            log.error("store.commit_failed", error=str(exc), units=len(units))
            failure = StorageError(f"storage failed: {exc}")
            outcomes = [(False, failure)] * len(units)
        for unit, (ok, value) in zip(units, outcomes, strict=True):
            unit.loop.call_soon_threadsafe(_settle, unit.future, ok, value)


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


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    elif isinstance(value, sqlite3.OperationalError) and _is_storage_failure(value):
        future.set_exception(StorageError(str(value)))
    else:
        future.set_exception(value)
