"""Moving a SQLite store to an empty PostgreSQL database: every row, ids kept, verified.

The source is read in one SQLite read transaction (one consistent snapshot). The target
is migrated first, then filled in ONE PostgreSQL transaction: tables in the order their
foreign keys need, each in batches (COPY), the identity sequences set past the highest
id (and past what SQLite's AUTOINCREMENT ever handed out, so an intervention number is
never given twice), and every table's row count and content hash compared with the
source's before the COMMIT. Any difference rolls everything back: the target is left as
empty as it was, and the move can be run again.

Attachment and raw-mail files are not in the database but under the data dir, named by
their sha256: the rows keep naming the same files, so nothing there moves.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql

from nexusmail.i18n import Msg, msg
from nexusmail.storage.postgresql import migrate as migrate_postgresql
from nexusmail.tickets.search_indexer import MESSAGE_VECTOR_SQL
from nexusmail.tickets.store import connect as connect_sqlite
from nexusmail.tickets.store import migrate as migrate_sqlite

# Every table of the schema. A table in either database that is not here stops the move
# before anything is written: a table added by a later migration must be added here
# (and to the move's test), never skipped silently.
TABLES = frozenset({
    "customers", "customer_domains", "contacts", "employees", "api_tokens", "sites",
    "equipment", "request_types", "request_type_assignees", "interventions",
    "participants", "thread_refs", "inbound", "messages", "attachments", "outbox",
    "raw_messages", "assignments", "assignment_answers", "schedules",
    "schedule_occurrences", "imap_checkpoints", "imap_oversize", "operators",
    "operator_sessions", "activities", "contracts", "sla_steps", "operator_reads",
    "employee_absences", "peer_events", "muted_peers", "imap_leases", "teams",
    "team_members", "team_dispatches", "sequences", "sequence_steps", "workers",
    "sequence_runs", "sequence_run_steps", "contract_equipment",
})
# Tables the migrations themselves fill (defaults a firm may edit): in a fresh target
# they are not "data", and the source's rows replace them.
SEEDED = frozenset({"request_types"})
MIGRATIONS_TABLE = "schema_migrations"
# SQLite's full-text index (FTS5 virtual tables and their shadow tables): derived from
# the rows; on PostgreSQL a generated column (cases) and a derived table (messages,
# below) hold the same.
FTS_SHADOWS = ("", "_data", "_idx", "_content", "_docsize", "_config")
# Tables the schema's triggers fill from other tables' rows (what the customer and the
# message searches read): never copied, but rebuilt in the target from the copied rows.
# Their triggers (named after them) are switched off during the copy, where they would
# rewrite a customer's row once per contact and mail domain copied, and the statement
# here rebuilds each table once at the end, in the same transaction.
DERIVED_REBUILDS = {
    "customer_search":
        "SELECT nexusmail_customer_search_refresh(id) FROM customers WHERE merged_into IS NULL",
    # The moved messages are indexed here, not left to the daemon's search indexer:
    # search would read a whole store's backlog by its text until then.
    "message_search":
        "INSERT INTO message_search (message_id, search_vector) SELECT m.id,"  # noqa: S608 (a constant)
        f" {MESSAGE_VECTOR_SQL} FROM messages m WHERE m.direction <> 'out'",
    "message_search_backlog": "DELETE FROM message_search_backlog",
}
DERIVED = frozenset(DERIVED_REBUILDS)
# A COPY per batch: at most this many rows, or this many bytes of values (raw mails can
# be large), so memory stays bounded and progress moves.
BATCH_ROWS = 2000
BATCH_BYTES = 16 * 1024 * 1024

Progress = Callable[[str, int], None]  # (table, rows just copied)


class MoveError(Exception):
    """The move cannot start or did not verify; nothing was committed to the target."""


@dataclass(frozen=True)
class TableMoved:
    name: str
    rows: int
    sha256: str  # order-independent hash of the table's content, equal on both sides


@dataclass(frozen=True)
class _Plan:
    order: list[str]
    columns: dict[str, list[str]]          # copied columns, sorted (generated ones left out)
    self_refs: dict[str, list[str]]        # columns naming a row of their own table
    keys: dict[str, list[str]]             # primary key columns
    identities: dict[str, str]             # table -> identity column


def source_counts(sqlite_path: Path) -> dict[str, int]:
    """Rows per known table of the SQLite store (for a progress total)."""
    conn = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master"
                                              " WHERE type = 'table'")}
        # Names from TABLES, not from input.
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # noqa: S608
                for t in sorted(TABLES & present)}
    finally:
        conn.close()


def move_store(sqlite_path: Path, url: str, *, password: str | None = None,
               progress: Progress = lambda table, rows: None) -> list[TableMoved]:
    """Copy every row of the SQLite store at `sqlite_path` into the PostgreSQL database at
    `url` (migrated here; it must hold no data); return what each table holds, verified."""
    source = connect_sqlite(sqlite_path)
    try:
        migrate_sqlite(source)  # the same schema version as the target's migrations
        source.execute("BEGIN")  # one snapshot for every read below
        kwargs: dict[str, Any] = {"password": password} if password else {}
        with psycopg.connect(url, autocommit=True, **kwargs) as target:
            _refuse_unknown_tables(_sqlite_tables(source), msg("the SQLite store"))
            present = _postgresql_tables(target)
            _refuse_unknown_tables(present, msg("the target database"))
            _refuse_data(target, present & TABLES)  # before its schema is touched
            migrate_postgresql(target)
            _refuse_data(target, TABLES)  # what the migrations alone put there
            _same_migrations(source, target)
            plan = _plan(source, target)
            with target.transaction():
                return _copy_all(source, target, plan, progress)
    finally:
        if source.in_transaction:
            source.execute("ROLLBACK")  # only read: ends the snapshot
        source.close()


def _sqlite_tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    # Only FTS5 indexes are derived; any other virtual table would be data: unknown.
    fts = {r[0] for r in rows if "USING FTS5" in " ".join((r[1] or "").upper().split())}
    derived = {f"{name}{suffix}" for name in fts for suffix in FTS_SHADOWS}
    return {r[0] for r in rows
            if not r[0].startswith("sqlite_") and r[0] not in derived} - DERIVED


def _postgresql_tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE"
                        " table_schema = current_schema() AND table_type = 'BASE TABLE'")
    return {r[0] for r in rows} - DERIVED


def _refuse_unknown_tables(tables: set[str], where: Msg) -> None:
    unknown = sorted(tables - TABLES - {MIGRATIONS_TABLE})
    if unknown:
        raise MoveError(msg("{where} has tables the move does not know: {tables}; refusing "
                            "rather than leaving them behind (a newer schema? use the "
                            "nexusmail version that made it)", where=where,
                            tables=", ".join(unknown)))


def _refuse_data(target: psycopg.Connection[Any], tables: set[str] | frozenset[str]) -> None:
    held = []
    for table in sorted(tables - SEEDED):
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        count = target.execute(query).fetchone()[0]  # type: ignore[index]
        if count:
            held.append(f"{table}: {count}")
    if held:
        raise MoveError(msg("the target database is not empty ({held} rows); moving into it "
                            "would mix two stores: give an empty database",
                            held=", ".join(held)))


def _same_migrations(source: sqlite3.Connection, target: psycopg.Connection[Any]) -> None:
    ours = {r[0] for r in source.execute("SELECT name FROM schema_migrations")}
    theirs = {r[0] for r in target.execute("SELECT name FROM schema_migrations")}
    if ours != theirs:
        raise MoveError(msg("the two schemas differ: only in SQLite {sqlite}, only in "
                            "PostgreSQL {postgresql}", sqlite=str(sorted(ours - theirs)),
                            postgresql=str(sorted(theirs - ours))))


def _plan(source: sqlite3.Connection, target: psycopg.Connection[Any]) -> _Plan:
    pg_columns: dict[str, set[str]] = {}
    identities: dict[str, str] = {}
    for table, column, generated, identity in target.execute(
            "SELECT table_name, column_name, is_generated, is_identity FROM"
            " information_schema.columns WHERE table_schema = current_schema()"):
        if generated == "ALWAYS":
            continue  # computed by PostgreSQL (the search columns)
        pg_columns.setdefault(table, set()).add(column)
        if identity == "YES":
            identities[table] = column
    columns: dict[str, list[str]] = {}
    for table in sorted(TABLES):
        ours = {r[1] for r in source.execute(f'PRAGMA table_info("{table}")')}
        if ours != pg_columns.get(table, set()):
            raise MoveError(f"table {table} has other columns on the two stores: only in "
                            f"SQLite {sorted(ours - pg_columns.get(table, set()))}, only in "
                            f"PostgreSQL {sorted(pg_columns.get(table, set()) - ours)}")
        columns[table] = sorted(ours)
    parents: dict[str, set[str]] = {t: set() for t in sorted(TABLES)}
    self_refs: dict[str, list[str]] = {}
    for child, parent, column in target.execute(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, a.attname"
            " FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid"
            " AND a.attnum = ANY (c.conkey) WHERE c.contype = 'f'"
            " AND c.connamespace = current_schema()::regnamespace ORDER BY 1, 3"):
        if child == parent:
            self_refs.setdefault(child, []).append(column)
        elif child in parents:
            parents[child].add(parent)
    try:
        order = list(TopologicalSorter(parents).static_order())
    except CycleError as exc:
        raise MoveError(f"the tables' foreign keys form a cycle: {exc.args[1]}") from None
    keys = {table: [r[0] for r in target.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
        " AND a.attnum = ANY (i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (table,))] for table in self_refs}
    if missing := [t for t in self_refs if not keys[t]]:
        raise MoveError(f"tables {missing} refer to their own rows but have no primary key")
    return _Plan(order, columns, self_refs, keys, identities)


def _copy_all(source: sqlite3.Connection, target: psycopg.Connection[Any], plan: _Plan,
              progress: Progress) -> list[TableMoved]:
    for table in reversed(plan.order):
        if table in SEEDED:
            target.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
    triggers = _derived_triggers(target)
    _switch_triggers(target, triggers, "DISABLE")
    moved = [_copy_table(source, target, plan, table, progress) for table in plan.order]
    for rebuild in DERIVED_REBUILDS.values():
        target.execute(rebuild)
    _switch_triggers(target, triggers, "ENABLE")
    _reset_identities(source, target, plan)
    for done in moved:
        rows, digest = _target_digest(target, done.name, plan.columns[done.name])
        if (rows, digest) != (done.rows, done.sha256):
            raise MoveError(msg("table {table} did not verify: {sqlite_rows} rows in SQLite, "
                                "{postgresql_rows} in PostgreSQL; content hash {sqlite_hash} "
                                "vs {postgresql_hash}; nothing was committed",
                                table=done.name, sqlite_rows=done.rows, postgresql_rows=rows,
                                sqlite_hash=done.sha256[:16], postgresql_hash=digest[:16]))
    return moved


def _derived_triggers(target: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """(table, trigger) for each trigger that keeps a derived table: named after it."""
    prefixes = [name.replace("_", "\\_") + "\\_%" for name in sorted(DERIVED)]
    rows = target.execute(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " WHERE NOT t.tgisinternal AND pg_table_is_visible(c.oid)"
        " AND t.tgname LIKE ANY(%s) ORDER BY 1, 2", (prefixes,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def _switch_triggers(target: psycopg.Connection[Any], triggers: list[tuple[str, str]],
                     state: Literal["ENABLE", "DISABLE"]) -> None:
    for table, trigger in triggers:
        target.execute(sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
            sql.Identifier(table), sql.SQL(state), sql.Identifier(trigger)))


def _copy_table(source: sqlite3.Connection, target: psycopg.Connection[Any], plan: _Plan,
                table: str, progress: Progress) -> TableMoved:
    columns = plan.columns[table]
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), names)
    # A column naming a row of its own table (a case linked to an older one, a customer
    # merged into another) is filled in after the whole table is there.
    later = [columns.index(c) for c in plan.self_refs.get(table, [])]
    keys = [columns.index(c) for c in plan.keys.get(table, [])]
    pending: list[tuple[Any, ...]] = []
    digest = _Digest()
    cursor = source.execute(sql_select(table, columns))
    for batch in _batches(cursor):
        with target.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in batch:
                digest.add(row)
                if later and any(row[i] is not None for i in later):
                    pending.append(tuple(row[i] for i in later) + tuple(row[k] for k in keys))
                    row = tuple(None if i in later else v for i, v in enumerate(row))
                copy.write_row(row)
        progress(table, len(batch))
    if pending:
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(columns[i]))
                                  for i in later)
        where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(columns[k]))
                                      for k in keys)
        with target.cursor() as cur:
            cur.executemany(sql.SQL("UPDATE {} SET {} WHERE {}").format(
                sql.Identifier(table), sets, where), pending)
    return TableMoved(table, digest.rows, digest.hexdigest())


def sql_select(table: str, columns: Sequence[str]) -> str:
    """SELECT of `columns` of `table` (names from the schema, quoted)."""
    return "SELECT " + ", ".join(f'"{c}"' for c in columns) + f' FROM "{table}"'  # noqa: S608


def _batches(cursor: sqlite3.Cursor) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    size = 0
    for row in cursor:
        batch.append(tuple(row))
        size += sum(len(v) for v in row if isinstance(v, str | bytes))
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _reset_identities(source: sqlite3.Connection, target: psycopg.Connection[Any],
                      plan: _Plan) -> None:
    """Each identity continues after the highest id copied, and after the highest
    number SQLite's AUTOINCREMENT ever gave (a deleted last case keeps its number)."""
    handed_out = dict(source.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
                      if _has_table(source, "sqlite_sequence") else [])
    for table, column in sorted(plan.identities.items()):
        if table not in TABLES:
            continue
        query = sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column),
                                                        sql.Identifier(table))
        highest = max(target.execute(query).fetchone()[0] or 0,  # type: ignore[index]
                      int(handed_out.get(table, 0)))
        # is_called false: the next value is 1 itself (an empty table starts at 1).
        target.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                       (table, column, max(highest, 1), highest > 0))


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() \
        is not None


def _target_digest(target: psycopg.Connection[Any], table: str, columns: list[str]
                   ) -> tuple[int, str]:
    digest = _Digest()
    with target.cursor(name=f"nm_verify_{table}") as cur:
        cur.itersize = BATCH_ROWS
        cur.execute(sql_select(table, columns))
        for row in cur:
            digest.add(row)
    return digest.rows, digest.hexdigest()


class _Digest:
    """A hash of a table's rows that does not depend on their order (the two databases
    sort text differently): the sum, modulo 2**256, of each row's sha256. Values are
    encoded with their type, so 1 and '1' or NULL and '' differ."""

    MODULUS = 1 << 256

    def __init__(self) -> None:
        self.rows = 0
        self._sum = 0

    def add(self, row: Sequence[Any]) -> None:
        h = hashlib.sha256()
        for value in row:
            h.update(_encode(value))
        self._sum = (self._sum + int.from_bytes(h.digest(), "big")) % self.MODULUS
        self.rows += 1

    def hexdigest(self) -> str:
        return f"{self._sum:064x}"


def _encode(value: Any) -> bytes:
    if value is None:
        return b"N"
    if isinstance(value, bool | int):
        data, tag = str(int(value)).encode(), b"I"
    elif isinstance(value, str):
        data, tag = value.encode("utf-8", "surrogatepass"), b"S"
    elif isinstance(value, bytes | bytearray | memoryview):
        data, tag = bytes(value), b"B"
    elif isinstance(value, float):
        data, tag = repr(value).encode(), b"F"
    else:
        raise MoveError(f"a value of type {type(value).__name__} cannot be compared")
    return tag + struct.pack(">Q", len(data)) + data
