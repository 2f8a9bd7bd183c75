"""The PostgreSQL store against a real cluster: group commit with a savepoint per unit,
readers from a pool, and StorageError (never a hang, never a lost unit) when the
database goes away, then recovery when it is back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from postgres_server import PostgresCluster

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
