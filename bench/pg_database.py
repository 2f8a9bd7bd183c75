"""The PostgreSQL database a benchmark run's daemon uses (`--database-url`).

Each run starts from an empty database, as a fresh install would: everything in the
`public` schema (tables, types, the extensions the migrations create) is dropped
first, so give the benchmarks a database of their own. The password, if any, comes
from libpq's environment (PGPASSWORD, ~/.pgpass), never from the command line.
"""

from __future__ import annotations

from typing import Any


def reset(url: str) -> None:
    """Drop everything in the database's public schema."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def connect(url: str) -> Any:
    """A connection for the harness's own reads (autocommit: each sees the latest commit);
    `execute(sql).fetchall()` as sqlite3's."""
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def server_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"
