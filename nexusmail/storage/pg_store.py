"""The store on PostgreSQL: the same `write` and `read` as the SQLite store.

One writer thread with its own connection applies write units in group commits, each
unit inside a savepoint, exactly as on SQLite, so ingest's rules (durable before 250,
one writer, a unit's failure sinking only itself) hold unchanged. Readers borrow
connections from an async pool. Units and readers get connections that take our SQL
(`?` placeholders) and give rows readable by name or position.

What the database says is mapped to what callers know: a lost connection, a COMMIT
whose outcome is unknown, a full disk or a read-only standby raise StorageError (SMTP
answers 451, the sender retries, idempotent ingest makes the retry one effect); a
serialization failure or a deadlock retries the whole group a few times first.
"""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from nexusmail.storage.postgresql import Row, migrate, row_factory, translate
from nexusmail.tickets.store import MAX_GROUP, StorageError

log = structlog.get_logger(__name__)

T = TypeVar("T")
# A group that lost a serialization race or a deadlock is tried again this often.
MAX_GROUP_TRIES = 3
READ_POOL_MAX = 8
CONNECT_TIMEOUT_S = 10
# How long a page or the readiness check waits for a reader: short, so an outage is a
# quick 503 ("storage unavailable"), not a hung request.
READ_WAIT_S = 3
# Errors where the database, not the unit, is at fault: the whole group fails with
# StorageError and nothing of it is acknowledged.
_STORAGE_FAILURES = (errors.OperationalError, errors.ReadOnlySqlTransaction,
                     errors.DiskFull, errors.InsufficientResources)
_RETRYABLE = (errors.SerializationFailure, errors.DeadlockDetected)


@functools.lru_cache(maxsize=4096)
def _sql(ours: str) -> str:
    return translate(ours)  # our statements are constants: translate each once


class WriteConnection:
    """What a write unit gets on PostgreSQL: sqlite3.Connection's execute/executemany."""

    dialect = "postgresql"  # for the few statements that differ by store

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Row]:
        return self._conn.execute(_sql(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /
                    ) -> psycopg.Cursor[Row]:
        cursor = self._conn.cursor()
        cursor.executemany(_sql(sql), parameters)
        return cursor


class ReadCursor:
    """aiosqlite's cursor, as far as our readers use it."""

    def __init__(self, cursor: psycopg.AsyncCursor[Row]) -> None:
        self._cursor = cursor

    async def fetchone(self) -> Row | None:
        return await self._cursor.fetchone()

    async def fetchall(self) -> list[Row]:
        return await self._cursor.fetchall()


class ReadConnection:
    """What a reader gets on PostgreSQL: aiosqlite.Connection's execute calls."""

    dialect = "postgresql"  # for the few statements that differ by store

    def __init__(self, conn: psycopg.AsyncConnection[Row]) -> None:
        self._conn = conn

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> ReadCursor:
        return ReadCursor(await self._conn.execute(_sql(sql), tuple(parameters or ())))

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = None
                               ) -> list[Row]:
        cursor = await self._conn.execute(_sql(sql), tuple(parameters or ()))
        return await cursor.fetchall()


@dataclass
class _Unit:
    fn: Callable[[WriteConnection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class PgStore:
    """The store on one PostgreSQL database: the writer thread and the readers' pool."""

    def __init__(self, conninfo: str, *, password: str | None = None) -> None:
        self.conninfo = conninfo
        # Kept out of the URL (which is logged): given to libpq beside it.
        self._password = password
        self._queue: queue.SimpleQueue[_Unit | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Row] | None = None
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] | None = None
        self.commits = 0

    async def open(self) -> None:
        self._conn = await asyncio.to_thread(self._connect)
        applied = await asyncio.to_thread(migrate, self._conn)
        if applied:
            log.info("store.migrated", migrations=applied, dialect="postgresql")
        self._thread = threading.Thread(target=self._run_writer, name="nexusmail-writer")
        self._thread.start()
        self._pool = AsyncConnectionPool(
            self.conninfo, min_size=1, max_size=READ_POOL_MAX, open=False,
            kwargs={"row_factory": row_factory, "autocommit": True, **self._secret()},
            connection_class=psycopg.AsyncConnection[Row], timeout=READ_WAIT_S,
            # A round trip per borrow: after a restart of the server the pool's old
            # connections are dead, and a page must not fail on one.
            check=AsyncConnectionPool.check_connection)
        await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)

    def _connect(self) -> psycopg.Connection[Row]:
        return psycopg.connect(self.conninfo, row_factory=row_factory,
                               connect_timeout=CONNECT_TIMEOUT_S, password=self._password)

    def _secret(self) -> dict[str, str]:
        return {"password": self._password} if self._password else {}


    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> PgStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def write(self, fn: Callable[[Any], T]) -> T:
        """Run `fn(conn)` in the writer's transaction; return once it is committed."""
        if self._thread is None:
            raise StorageError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Unit(fn, future, loop))
        return await future

    @asynccontextmanager
    async def read(self) -> AsyncIterator[ReadConnection]:
        """A connection for reading (autocommit: every statement sees the latest commit)."""
        if self._pool is None:
            raise StorageError("the store is not open")
        try:
            async with self._pool.connection() as conn:
                yield ReadConnection(conn)
        except _STORAGE_FAILURES as exc:
            raise StorageError(f"storage failed: {exc}") from exc

    def _run_writer(self) -> None:
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
            units = [u for u in group if isinstance(u, _Unit)]
            self._apply_with_retries(units)
            if _STOP in group:
                return

    def _apply_with_retries(self, units: list[_Unit]) -> None:
        for attempt in range(1, MAX_GROUP_TRIES + 1):
            try:
                outcomes = self._apply_group(units)
            except _RETRYABLE as exc:
                if attempt < MAX_GROUP_TRIES:
                    log.warning("store.group_retried", error=str(exc), attempt=attempt)
                    time.sleep(0.01 * attempt)
                    continue
                outcomes = [(False, StorageError(f"storage failed: {exc}"))] * len(units)
            except (psycopg.Error, OSError) as exc:
                log.error("store.commit_failed", error=str(exc), units=len(units))
                self._drop_broken_connection()
                outcomes = [(False, StorageError(f"storage failed: {exc}"))] * len(units)
            break
        for unit, (ok, value) in zip(units, outcomes, strict=True):
            unit.loop.call_soon_threadsafe(_settle, unit.future, ok, value)

    def _apply_group(self, units: list[_Unit]) -> list[tuple[bool, Any]]:
        if self._conn is None or self._conn.broken or self._conn.closed:
            self._conn = self._connect()  # raises OperationalError while the server is down
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        with conn.transaction():
            tx = WriteConnection(conn)
            for unit in units:
                try:
                    with conn.transaction():  # a SAVEPOINT: a unit's failure stays its own
                        value = unit.fn(tx)
                except _STORAGE_FAILURES + _RETRYABLE:
                    raise  # the database's trouble, not the unit's: the group fails
                except Exception as exc:  # the unit's own failure: its caller gets it
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, value))
        self.commits += 1
        return outcomes

    def _drop_broken_connection(self) -> None:
        if self._conn is not None and (self._conn.broken or self._conn.closed):
            self._conn = None


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
