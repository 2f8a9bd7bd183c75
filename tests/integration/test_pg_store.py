"""The PostgreSQL store against a real cluster: group commit with a savepoint per unit,
readers from a pool, and StorageError (never a hang, never a lost unit) when the
database goes away, then recovery when it is back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from postgres_server import PostgresCluster

from nexusmail.storage.connections import INTEGRITY_ERRORS
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets.store import StorageError


@pytest.fixture
def database(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")


def add_customer(name: str) -> Any:
    def unit(tx: Any) -> int:
        row = tx.execute("INSERT INTO customers (name, created_at) VALUES (?, ?)"
                         " RETURNING id", (name, "2026-03-02T09:00:00+00:00")).fetchone()
        return int(row[0])
    return unit


def failing(tx: Any) -> None:
    tx.execute("INSERT INTO customers (name, created_at) VALUES (?, ?)", ("ghost", "x"))
    raise ValueError("this unit changes its mind")


async def test_units_commit_together_and_fail_alone(database: str) -> None:
    """Units queued together share one COMMIT; one that raises is rolled back alone and
    its caller gets its exception; the others are stored and read back by name."""
    async with PgStore(database) as store:
        results = await asyncio.gather(
            store.write(add_customer("Rossi Srl")), store.write(failing),
            store.write(add_customer("Popescu SRL")), return_exceptions=True)
        assert isinstance(results[1], ValueError)
        async with store.read() as conn:
            rows = await conn.execute_fetchall(
                "SELECT id, name FROM customers WHERE name LIKE ? ORDER BY id", ("%S%",))
            cursor = await conn.execute("SELECT count(*) AS n FROM customers")
            counted = await cursor.fetchone()
        assert [r["name"] for r in rows] == ["Rossi Srl", "Popescu SRL"]
        assert [r[0] for r in rows] == results[0:3:2]
        assert counted is not None
        assert counted["n"] == 2
        assert store.commits <= 2


async def test_a_lost_database_is_a_storage_error_then_recovers(
    database: str, postgres_cluster: PostgresCluster
) -> None:
    """While the server is down a write raises StorageError (the SMTP side answers 451);
    once it is back, the next write reconnects and commits."""
    async with PgStore(database) as store:
        await store.write(add_customer("before"))
        await asyncio.to_thread(postgres_cluster.crash)
        try:
            with pytest.raises(StorageError):
                await store.write(add_customer("during"))
        finally:
            await asyncio.to_thread(postgres_cluster.start)
        await store.write(add_customer("after"))
        async with store.read() as conn:
            names = [r["name"] for r in await conn.execute_fetchall(
                "SELECT name FROM customers ORDER BY id")]
        assert names == ["before", "after"]


def unread_duplicate(tx: Any) -> None:
    tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)", ("same", b"a"))
    tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)", ("same", b"b"))


def renamed_count(tx: Any) -> int:
    return int(tx.execute("UPDATE customers SET notes = ? WHERE name LIKE ?",
                          ("seen", "%Srl")).rowcount)


def rows_with_own_savepoints(tx: Any) -> list[str]:
    """Each row in a savepoint of its own, a refused row undone and counted, as the
    bulk imports do."""
    refused = []
    for key in ("one", "one", "two"):
        tx.execute("SAVEPOINT row")
        try:
            tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)", (key, b"x"))
        except INTEGRITY_ERRORS:
            tx.execute("ROLLBACK TO SAVEPOINT row")
            refused.append(key)
        tx.execute("RELEASE SAVEPOINT row")
    return refused


async def test_an_unread_failing_statement_fails_its_own_unit_only(database: str) -> None:
    """A unit whose statement fails without the unit reading its result (statements are
    sent without waiting) still gets that failure, its other changes are undone, and the
    units around it in the same group commit."""
    async with PgStore(database) as store:
        results = await asyncio.gather(
            store.write(add_customer("Rossi Srl")), store.write(unread_duplicate),
            store.write(add_customer("Bianchi Srl")), store.write(renamed_count),
            return_exceptions=True)
        async with store.read() as conn:
            raw = await conn.execute_fetchall("SELECT sha256 FROM raw_messages")
            notes = await conn.execute_fetchall("SELECT notes FROM customers ORDER BY id")
    assert isinstance(results[1], INTEGRITY_ERRORS)
    assert raw == []
    assert results[3] == 2  # the rowcount of an UPDATE is read after its answer came
    assert [r["notes"] for r in notes] == ["seen", "seen"]


async def test_a_unit_with_savepoints_of_its_own_handles_each_failure_in_place(
        database: str) -> None:
    """A unit that sets its own savepoints sees a statement's failure where it made it,
    undoes just that row and goes on; the rest of its rows are committed."""
    async with PgStore(database) as store:
        refused = await store.write(rows_with_own_savepoints)
        async with store.read() as conn:
            keys = [r[0] for r in await conn.execute_fetchall(
                "SELECT sha256 FROM raw_messages ORDER BY sha256")]
    assert refused == ["one"]
    assert keys == ["one", "two"]


async def test_the_writer_compresses_large_values_with_lz4(database: str) -> None:
    """The writer's session asks for lz4 (a raw mail that hardly compresses costs pglz
    a full pass); what it wrote reads back unchanged."""
    raw = b"Subject: the same line\r\n" * 4000

    def store_raw(tx: Any) -> None:
        tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)", ("big", raw))

    async with PgStore(database) as store:
        await store.write(store_raw)
        async with store.read() as conn:
            row = (await conn.execute_fetchall(
                "SELECT pg_column_compression(data), data FROM raw_messages"))[0]
    assert row[0] == "lz4"
    assert bytes(row[1]) == raw


async def test_a_groups_last_unit_failing_behind_the_commit_fails_alone(
        database: str) -> None:
    """The last unit of a group has its unread statements answered with the COMMIT;
    when one of them fails, that unit alone is undone and gets the failure, the unit
    before it is committed, and the writer goes on."""
    async with PgStore(database) as store:
        results = await asyncio.gather(
            store.write(add_customer("Rossi Srl")), store.write(unread_duplicate),
            return_exceptions=True)
        alone = await asyncio.gather(store.write(unread_duplicate), return_exceptions=True)
        after = await store.write(add_customer("Bianchi Srl"))
        async with store.read() as conn:
            raw = await conn.execute_fetchall("SELECT sha256 FROM raw_messages")
            names = [r["name"] for r in await conn.execute_fetchall(
                "SELECT name FROM customers ORDER BY id")]
    assert isinstance(results[1], INTEGRITY_ERRORS)
    assert isinstance(alone[0], INTEGRITY_ERRORS)
    assert raw == []
    assert names == ["Rossi Srl", "Bianchi Srl"]
    assert after == results[0] + 1


async def test_a_unit_failing_again_and_again_gets_its_own_failure_every_time(
        database: str) -> None:
    """Each of many failing units gets its own failure, never the store's: the COMMIT
    that psycopg would prepare after a few runs is skipped by the server behind the
    failure and must not be taken for prepared; and the failure read before the
    COMMIT's answer must still be taken for the unit's own."""
    async with PgStore(database) as store:
        failures = []
        for round_ in range(150):
            failures += await asyncio.gather(store.write(unread_duplicate),
                                             return_exceptions=True)
            if round_ % 10 == 0:
                await store.write(add_customer(f"Cliente {round_}"))
        async with store.read() as conn:
            customers = await conn.execute_fetchall("SELECT count(*) AS n FROM customers")
    assert [type(f) for f in failures if not isinstance(f, INTEGRITY_ERRORS)] == []
    assert customers[0]["n"] == 15


def duplicate_then_rename(tx: Any) -> None:
    unread_duplicate(tx)
    renamed_count(tx)  # sent behind the failure: the server skips it


async def test_a_statement_first_sent_behind_a_failure_works_in_later_units(
        database: str) -> None:
    """A statement that psycopg prepared while the server was skipping what followed a
    failure is unknown to the server; a later unit that runs it still commits."""
    async with PgStore(database) as store:
        await store.write(add_customer("Rossi Srl"))
        for _ in range(8):
            with pytest.raises(INTEGRITY_ERRORS):
                await store.write(duplicate_then_rename)
        renamed = await store.write(renamed_count)
    assert renamed == 1
