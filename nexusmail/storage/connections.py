"""What queries may assume of a connection, on SQLite and on PostgreSQL alike.

Write units get a `WriteTx` (sqlite3.Connection, or the PostgreSQL store's adapter),
readers a `ReadTx` (aiosqlite.Connection, or the adapter over a pooled psycopg
connection). Both take our SQL with `?` placeholders and give rows readable by column
name or position (`DbRow`). Typing the queries against these, not against sqlite3, is
what keeps them from growing SQLite-only calls (lastrowid, executescript, ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


def dialect_of(conn: object) -> str:
    """"postgresql" for the PostgreSQL store's connections, else "sqlite": for the few
    statements that differ by store."""
    return str(getattr(conn, "dialect", "sqlite"))


class DbRow(Protocol):
    def __getitem__(self, key: Any, /) -> Any: ...

    def __len__(self) -> int: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class WriteTx(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


class ReadCursor(Protocol):
    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...


class ReadTx(Protocol):
    def execute(self, sql: str, parameters: Iterable[Any] | None = ...
                ) -> Awaitable[ReadCursor]: ...

    async def execute_fetchall(self, sql: str, parameters: Iterable[Any] | None = ...
                               ) -> Iterable[Any]: ...


def _integrity_errors() -> tuple[type[Exception], ...]:
    import sqlite3

    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


# A constraint refused the change (a unique key above all), on either store.
INTEGRITY_ERRORS = _integrity_errors()


class Storage(Protocol):
    """A store the daemon's parts can use, SQLite's (tickets.store) or PostgreSQL's
    (storage.pg_store): write units in the one writer's transactions, reads beside."""

    commits: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, fn: Callable[[WriteTx], T], /) -> T: ...

    def read(self) -> AbstractAsyncContextManager[ReadTx]: ...
