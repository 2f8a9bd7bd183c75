"""PostgreSQL as the store: connections, the schema's migrations, our SQL on its dialect.

The queries of nexusmail are written once, in the SQL both stores speak, with `?`
placeholders and rows read by column name or position (sqlite3.Row's ways). This module
lets that code run on psycopg 3 unchanged: `translate` turns `?` into `%s` (and a
literal `%` into `%%`), `Row` reads like sqlite3.Row, and `migrate` applies the
PostgreSQL migrations, which keep the same numbering as SQLite's.

Migrations run one transaction each, under a transaction-level advisory lock: two
daemons starting at once against one database migrate exactly once, and the lock is
released with the transaction even behind a transaction-mode pooler (a session-level
lock would not be).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import RowMaker

# pg_advisory_xact_lock key for schema changes: any fixed 64-bit number, the same for
# every daemon (b"nexusmai" read as an integer, so it says what it is in a lock list).
MIGRATION_LOCK_KEY = int.from_bytes(b"nexusmai", "big")
MIGRATIONS_PACKAGE = "nexusmail.tickets"
MIGRATIONS_DIR = "migrations/postgresql"


class Row(tuple[Any, ...]):
    """A result row read by position or by column name, as sqlite3.Row is."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._index[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def row_factory(cursor: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any]) -> RowMaker[Row]:
    """psycopg row factory making `Row`s (one column index per result, shared)."""
    names = [column.name for column in cursor.description or ()]
    index = {name: position for position, name in enumerate(names)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, index)

    return make


def translate(sql: str) -> str:
    """Our SQL (`?` placeholders) as psycopg wants it (`%s`, and `%` doubled).

    Linear, and quote-aware: a `?` or `%` inside a string literal or a quoted name is
    text, not a placeholder."""
    out: list[str] = []
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
            out.append("%%" if char == "%" else char)
        elif char in ("'", '"'):
            quote = char
            out.append(char)
        elif char == "?":
            out.append("%s")
        elif char == "%":
            out.append("%%")
        else:
            out.append(char)
    return "".join(out)


def connect(conninfo: str, **kwargs: Any) -> psycopg.Connection[Row]:
    """A connection with nexusmail's row type, outside autocommit (the caller commits)."""
    return psycopg.connect(conninfo, row_factory=row_factory, **kwargs)


def compress_cheaply(conn: psycopg.Connection[Any]) -> None:
    """Large values this connection writes are compressed with lz4, not pglz.

    A raw mail is mostly base64 attachments that hardly compress: pglz works through
    each value before it gives up, ~1 ms per 40 KB mail of the writer's server time
    (measured), where lz4 gives up in a fraction of that. Values keep the method
    they were written with, so reading needs nothing; a server built without lz4
    refuses the setting and keeps pglz."""
    try:
        conn.execute("SET default_toast_compression = 'lz4'")
    except psycopg.errors.InvalidParameterValue:
        conn.rollback()
    else:
        conn.commit()  # a plain SET outlives its transaction: for the whole session


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the PostgreSQL migrations not applied yet, each in its own transaction under
    the migration lock; return their names. Safe to run from many daemons at once."""
    folder = resources.files(MIGRATIONS_PACKAGE) / MIGRATIONS_DIR
    applied: list[str] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                         " (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE name = %s",
                                (entry.name,)).fetchone()
            if done is not None:
                continue
            conn.execute(entry.read_text(encoding="utf-8").encode())
            conn.execute("INSERT INTO schema_migrations VALUES"
                         " (%s, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'))",
                         (entry.name,))
        applied.append(entry.name)
    return applied
