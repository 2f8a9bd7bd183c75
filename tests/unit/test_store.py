"""The store: migrations, one writer, group commit, failures surfaced."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from nexusmail.tickets import store as sqlite_store
from nexusmail.tickets.store import StorageError, Store, connect, migrate

# The PostgreSQL store's own tests are tests/integration/test_pg_store.py.
pytestmark = pytest.mark.sqlite_only(
    reason="the SQLite store's own tests (sqlite_master, pragmas, its file)")


async def test_migrations_create_the_schema(store: Store) -> None:
    """Opening a new store applies every migration."""
    async with store.read() as conn:
        rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")
    names = {row[0] for row in rows}
    assert {"interventions", "messages", "attachments", "outbox", "inbound"} <= names


async def test_the_writer_keeps_savepoint_journals_in_memory(store: Store) -> None:
    """The writer's units journal their savepoints in memory (temp_store = MEMORY),
    not in a temporary file written at every mail."""
    assert await store.write(lambda tx: tx.execute("PRAGMA temp_store").fetchone()[0]) == 2


def test_the_wal_file_shrinks_back_after_a_large_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction far larger than usual (a migration copying every stored mail)
    does not leave a write-ahead log of its size on disk once it is checkpointed."""
    monkeypatch.setattr(sqlite_store, "WAL_SIZE_LIMIT", 1024 * 1024)
    db = tmp_path / "store.sqlite3"
    conn = connect(db)
    conn.execute("CREATE TABLE big (data BLOB)")
    conn.execute("BEGIN IMMEDIATE")
    for _ in range(48):
        conn.execute("INSERT INTO big VALUES (?)", (bytes(128 * 1024),))
    conn.execute("COMMIT")  # ~6 MB in the WAL, then the automatic checkpoint
    wal = Path(f"{db}-wal")
    assert wal.stat().st_size > 4 * 1024 * 1024
    conn.execute("INSERT INTO big VALUES (x'00')")  # the WAL starts over here
    assert wal.stat().st_size <= 1024 * 1024
    conn.close()


async def test_concurrent_writes_share_commits(store: Store) -> None:
    """Writes queued together are committed together, and each still gets its result."""

    def insert(i: int):  # type: ignore[no-untyped-def]
        return lambda tx: tx.execute(
            "INSERT INTO employees (email, name, created_at) VALUES (?, ?, 'now')",
            (f"e{i}@x.it", str(i)),
        ).lastrowid

    ids = await asyncio.gather(*(store.write(insert(i)) for i in range(50)))
    assert sorted(ids) == list(range(1, 51))
    assert store.commits < 50


async def test_a_failing_unit_does_not_sink_its_neighbours(store: Store) -> None:
    """One unit raising rolls back only its own changes."""

    def good(tx: sqlite3.Connection) -> None:
        tx.execute("INSERT INTO employees (email, created_at) VALUES ('a@x.it', 'now')")

    def bad(tx: sqlite3.Connection) -> None:
        tx.execute("INSERT INTO employees (email, created_at) VALUES ('b@x.it', 'now')")
        raise ValueError("boom")

    results = await asyncio.gather(store.write(good), store.write(bad), return_exceptions=True)
    assert isinstance(results[1], ValueError)
    async with store.read() as conn:
        rows = await conn.execute_fetchall("SELECT email FROM employees")
    assert [row[0] for row in rows] == ["a@x.it"]


async def test_full_disk_is_a_storage_error(store: Store) -> None:
    """A real SQLITE_FULL (page limit reached) surfaces as StorageError, then recovers."""
    pages = await store.write(lambda tx: tx.execute("PRAGMA page_count").fetchone()[0])
    await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages}"))
    blob = b"x" * 200_000
    insert = "INSERT INTO raw_messages (sha256, data) VALUES ('h', ?)"
    with pytest.raises(StorageError):
        await store.write(lambda tx: tx.execute(insert, (blob,)))
    await store.write(lambda tx: tx.execute("PRAGMA max_page_count = 1073741823"))
    await store.write(lambda tx: tx.execute(insert, (blob,)))


def test_raw_mail_stored_before_the_rowid_table_is_kept(tmp_path: Path) -> None:
    """Raw mail stored while raw_messages was a WITHOUT ROWID table is all there, bytes
    and blob-store flag, once the migration has made it a rowid table."""
    conn = connect(tmp_path / "db.sqlite3")
    migrate(conn)
    conn.executescript("""
        DROP TABLE raw_messages;
        CREATE TABLE raw_messages (sha256 TEXT PRIMARY KEY, data BLOB NOT NULL,
                                   in_blobs INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
        DELETE FROM schema_migrations WHERE name = '0033_raw_messages_rowid.sql';
    """)
    rows = [("a" * 64, b"x" * 70_000, 0), ("b" * 64, b"", 1)]
    conn.executemany("INSERT INTO raw_messages VALUES (?, ?, ?)", rows)
    assert migrate(conn) == ["0033_raw_messages_rowid.sql"]
    kept = conn.execute("SELECT sha256, data, in_blobs FROM raw_messages ORDER BY sha256")
    assert [tuple(row) for row in kept] == rows
    [sql] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'raw_messages'").fetchone()
    assert "WITHOUT ROWID" not in sql
    with pytest.raises(sqlite3.IntegrityError):  # the sha256 is still the key
        conn.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, x'00')", ("a" * 64,))
    conn.close()
