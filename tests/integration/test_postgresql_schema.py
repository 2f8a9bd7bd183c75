"""The PostgreSQL schema against a real cluster: the same tables and columns as SQLite's,
migrated exactly once by daemons starting together, and search that finds what FTS5
finds."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from postgres_server import PostgresCluster

from nexusmail.storage import postgresql, store_move
from nexusmail.tickets.store import connect as connect_sqlite
from nexusmail.tickets.store import migrate as migrate_sqlite

# Columns PostgreSQL has for its own search (FTS5 keeps them in virtual tables instead).
# What PostgreSQL's text search keeps beside the rows (FTS5's tables on SQLite).
SEARCH_COLUMNS = {("interventions", "search_vector"), ("message_search", "message_id"),
                  ("message_search", "search_vector"), ("message_search_backlog", "message_id")}


@pytest.fixture
def database(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database of the session's cluster; its URL."""
    return postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")


def _sqlite_columns(path: Path) -> set[tuple[str, str]]:
    conn = connect_sqlite(path)
    try:
        migrate_sqlite(conn)
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE '%fts%' AND name NOT LIKE 'sqlite_%'")]
        return {(t, r[1]) for t in tables
                for r in conn.execute(f"PRAGMA table_info({t})")}
    finally:
        conn.close()


def test_both_stores_have_the_same_tables_and_columns(database: str, tmp_path: Path) -> None:
    """Every migration has its PostgreSQL twin: after both ran, each table has the same
    columns on both stores (PostgreSQL's search columns and tables aside)."""
    with postgresql.connect(database) as conn:
        applied = postgresql.migrate(conn)
        rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns"
                            " WHERE table_schema = 'public'").fetchall()
    pg_columns = {(r[0], r[1]) for r in rows} - SEARCH_COLUMNS
    sqlite_dir = Path(postgresql.__file__).parents[1] / "tickets" / "migrations"
    assert applied == sorted(p.name for p in sqlite_dir.glob("*.sql"))
    assert pg_columns == _sqlite_columns(tmp_path / "nexusmail.sqlite3")


def test_daemons_starting_together_migrate_once(database: str) -> None:
    """Four connections migrating at the same moment: each migration is applied once,
    by one of them, and none fails."""
    results: list[list[str]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            with postgresql.connect(database) as conn:
                start.wait()
                results.append(postgresql.migrate(conn))
        except BaseException as exc:  # reported below, with the others' results
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    every = [name for applied in results for name in applied]
    assert sorted(every) == sorted(set(every))
    with psycopg.connect(database) as conn:
        [(count,)] = conn.execute("SELECT count(*) FROM schema_migrations").fetchall()
    assert count == len(set(every))


# Text written, words searched, whether FTS5 (unicode61, remove_diacritics 2) finds it.
SEARCHES = [
    ("Scrivete a bob@example.com per il preventivo", "bob", True),
    ("Scrivete a bob@example.com per il preventivo", "example com", True),
    ("Ricambio codice 12-345/B ordinato", "345", True),
    ("Ricambio codice 12-345/B ordinato", "12 345 b", True),
    ("Perché la caldaia è in blocco?", "perche", True),
    ("Instalația de încălzire nu pornește", "instalatia", True),
    ("Instalaţia (cedilla) de încălzire", "instalatia", True),
    ("ȘTEFAN a sunat", "stefan", True),
    ("La caldaia non parte", "CALDAIA", True),
    ("La caldaia non parte", "caldaie", False),     # no stemming on either store
    ("La caldaia non parte", "caldaia pompa", False),  # every word must be there
]


def test_search_finds_on_postgresql_what_fts5_finds(database: str) -> None:
    """One table of searches, run on FTS5 and on PostgreSQL's text search: the same
    answer for each."""
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE VIRTUAL TABLE t USING fts5(body,"
                 " tokenize = 'unicode61 remove_diacritics 2')")
    with postgresql.connect(database) as conn:
        postgresql.migrate(conn)
        for text, words, expected in SEARCHES:
            lite.execute("DELETE FROM t")
            lite.execute("INSERT INTO t (body) VALUES (?)", (text,))
            fts5 = lite.execute("SELECT count(*) FROM t WHERE t MATCH ?",
                                (" ".join(f'"{w}"' for w in words.split()),)).fetchone()[0]
            [(pg,)] = conn.execute(
                "SELECT nexusmail_search_vector(%s)"
                " @@ plainto_tsquery('nexusmail_text', nexusmail_search_text(%s))",
                (text, words)).fetchall()
            assert (bool(fts5), pg) == (expected, expected), (text, words)


def test_migrate_store_knows_every_table(database: str, tmp_path: Path) -> None:
    """`nexusmail migrate-store` refuses a table it does not know: a migration that adds
    a table must add it to storage.store_move.TABLES (and a row of it to its test)."""
    with postgresql.connect(database) as conn:
        postgresql.migrate(conn)
        rows = conn.execute("SELECT table_name FROM information_schema.tables"
                            " WHERE table_schema = 'public'").fetchall()
    assert {r[0] for r in rows} - {"schema_migrations"} == store_move.TABLES | store_move.DERIVED
