"""What queries may assume of a connection, on SQLite and on PostgreSQL alike.

Write units get a `WriteTx` (sqlite3.Connection, or the PostgreSQL store's adapter),
readers a `ReadTx` (aiosqlite.Connection, or the adapter over a pooled psycopg
connection). Both take our SQL with `?` placeholders and give rows readable by column
name or position (`DbRow`). Typing the queries against these, not against sqlite3, is
what keeps them from growing SQLite-only calls (lastrowid, executescript, ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator, Sequence
from typing import Any, Protocol


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
