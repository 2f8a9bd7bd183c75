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
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import psycopg
import structlog
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from nexusmail.storage.group_commit import GroupCommitWriter, Outcome, StorageError
from nexusmail.storage.pg_pipeline import PipelinedUnit, roll_back_quietly
from nexusmail.storage.postgresql import (
    Row,
    compress_cheaply,
    connect,
    migrate,
    row_factory,
    translate,
)

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


class PgStore(GroupCommitWriter):
    """The store on one PostgreSQL database: the writer thread and the readers' pool."""

    dialect = "postgresql"  # as its connections' (storage.connections.dialect_of)

    def __init__(self, conninfo: str, *, password: str | None = None) -> None:
        super().__init__()
        self.conninfo = conninfo
        # Kept out of the URL (which is logged): given to libpq beside it.
        self._password = password
        self._conn: psycopg.Connection[Row] | None = None
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Row]] | None = None

    async def open(self) -> None:
        self._conn = await asyncio.to_thread(self._connect)
        applied = await asyncio.to_thread(migrate, self._conn)
        if applied:
            log.info("store.migrated", migrations=applied, dialect="postgresql")
        self.start_writer()
        self._pool = AsyncConnectionPool(
            self.conninfo, min_size=1, max_size=READ_POOL_MAX, open=False,
            kwargs={"row_factory": row_factory, "autocommit": True, **self._secret()},
            connection_class=psycopg.AsyncConnection[Row], timeout=READ_WAIT_S,
            # A round trip per borrow: after a restart of the server the pool's old
            # connections are dead, and a page must not fail on one.
            check=AsyncConnectionPool.check_connection)
        await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)

    def _connect(self) -> psycopg.Connection[Row]:
        conn = connect(self.conninfo, connect_timeout=CONNECT_TIMEOUT_S,
                       password=self._password)
        try:
            compress_cheaply(conn)
            # The writer sends its own BEGIN ahead of a group's first unit: psycopg's
            # (outside autocommit) would wait a round trip for its answer in pipeline mode.
            conn.autocommit = True
        except BaseException:
            conn.close()  # the server went away again: no half-set-up connection kept
            raise
        return conn

    def _secret(self) -> dict[str, str]:
        return {"password": self._password} if self._password else {}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await self.stop_writer()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> PgStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

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

    def apply_group(self, fns: list[Callable[[Any], Any]]) -> list[Outcome]:
        """One transaction for the group, retried whole after a serialization failure or
        a deadlock; the writer reconnects when the server was lost."""
        for attempt in range(1, MAX_GROUP_TRIES + 1):
            try:
                return self._apply_once(fns)
            except _RETRYABLE as exc:
                if attempt < MAX_GROUP_TRIES:
                    log.warning("store.group_retried", error=str(exc), attempt=attempt)
                    time.sleep(0.01 * attempt)
                    continue
                return [(False, StorageError(f"storage failed: {exc}"))] * len(fns)
            except (psycopg.Error, OSError) as exc:
                log.error("store.commit_failed", error=str(exc), units=len(fns))
                self._drop_broken_connection()
                return [(False, StorageError(f"storage failed: {exc}"))] * len(fns)
        raise AssertionError("unreachable: the last try returns")

    def _apply_once(self, fns: list[Callable[[Any], Any]]) -> list[Outcome]:
        if self._conn is None or self._conn.broken or self._conn.closed:
            self._conn = self._connect()  # raises OperationalError while the server is down
        conn = self._conn
        try:
            # Pipeline mode: a unit's statements go out without waiting for each answer
            # (storage.pg_pipeline); the COMMIT is waited for before any unit is settled.
            with conn.pipeline() as pipeline:
                conn.execute("BEGIN", prepare=False)  # not waited for (see _connect)
                units = [PipelinedUnit(conn, pipeline) for _ in fns]
                # The last unit's unread statements are answered with the COMMIT: one
                # round trip fewer per group (per mail when mail comes one at a time).
                outcomes = [_apply_unit(unit, fn, settle=unit is not units[-1])
                            for unit, fn in zip(units, fns, strict=True)]
                _commit_with_last_unit(conn, pipeline, units[-1], outcomes)
        except BaseException:
            roll_back_quietly(conn)
            raise
        self.commits += 1
        return outcomes

    def _drop_broken_connection(self) -> None:
        if self._conn is not None and (self._conn.broken or self._conn.closed):
            self._conn = None


def _apply_unit(unit: PipelinedUnit, fn: Callable[[Any], Any], *, settle: bool = True
                ) -> Outcome:
    """One unit in its own savepoint: a unit's failure stays its own, the database's
    trouble (raised) fails the group. Unless `settle`, the unit's unread statements are
    left to be answered with the COMMIT (_commit_with_last_unit)."""
    try:
        unit.send_quietly("SAVEPOINT unit")
        value = fn(unit)
        unit.send_quietly("RELEASE SAVEPOINT unit")
        if settle:
            unit.wait()  # the unit's unread statements answer here, inside the unit
    except _STORAGE_FAILURES + _RETRYABLE:
        raise
    except Exception as exc:  # the unit's own failure: its caller gets it
        _undo(unit, exc)
        return False, exc
    return True, value


def _undo(unit: PipelinedUnit, failure: BaseException) -> None:
    pending = unit.drain()  # what it sent before failing, unread
    # "Pipeline aborted" only says the server skipped what followed the unit's own
    # failure; it is not the database's trouble.
    if isinstance(pending, _STORAGE_FAILURES + _RETRYABLE) and not isinstance(
            pending, errors.PipelineAborted):
        raise pending from failure
    unit.send_quietly("ROLLBACK TO SAVEPOINT unit")
    unit.send_quietly("RELEASE SAVEPOINT unit")
    unit.wait()


def _commit_with_last_unit(conn: psycopg.Connection[Row], pipeline: psycopg.Pipeline,
                           last: PipelinedUnit, outcomes: list[Outcome]) -> None:
    """COMMIT, sent behind the last unit's unread statements. When one of those failed,
    the server skipped the COMMIT and the transaction waits, failed: that unit alone is
    undone and gets the failure, and the others are committed."""
    try:
        _commit(conn, pipeline)
        return
    except _STORAGE_FAILURES + _RETRYABLE:
        raise
    except psycopg.Error as exc:
        # psycopg raises the first failure as soon as it reads it; the COMMIT's answer
        # may still be on its way, and until it is read the transaction's state reads
        # "active". Read the rest first.
        with suppress(psycopg.Error):
            pipeline.sync()
        still_open = conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        if not (still_open and outcomes[-1][0]):
            raise  # not the last unit's statement: the group fails
        _undo(last, exc)
        outcomes[-1] = (False, exc)
    _commit(conn, pipeline)


def _commit(conn: psycopg.Connection[Row], pipeline: psycopg.Pipeline) -> None:
    """COMMIT and wait for its answer: no unit is settled before it."""
    # Not prepared (nor are BEGIN and the savepoints): psycopg counts a statement as
    # prepared on the server when it sends it, and a COMMIT sent behind a failed
    # statement is skipped there; the name's next use failed the whole group.
    conn.execute("COMMIT", prepare=False)
    pipeline.sync()
