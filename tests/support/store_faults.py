"""Real storage faults, made on the store a test runs on (SQLite or PostgreSQL).

    async with writes_refused(daemon.running.store):
        assert (await daemon.send(big_mail))[0] == 451   # and nothing half-stored
    assert (await daemon.send(big_mail))[0] == 250       # the sender's retry

On SQLite the database file may not grow by one page (a real SQLITE_FULL, as on a full
disk); on PostgreSQL the writer's session turns read-only (what a failed-over standby
answers). Either way the database itself refuses, not a stand-in of ours.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nexusmail.storage.connections import WriteTx, dialect_of


def _dialect(store: Any) -> str:
    return "sqlite" if hasattr(store, "db_path") else "postgresql"


@asynccontextmanager
async def writes_refused(store: Any) -> AsyncIterator[None]:
    """Inside: a write that needs room (SQLite) or any write (PostgreSQL) fails with a
    storage error. On the way out the store takes writes again."""
    if _dialect(store) == "sqlite":
        cap = await store.write(lambda tx: int(tx.execute("PRAGMA max_page_count").fetchone()[0]))
        pages = await store.write(lambda tx: int(tx.execute("PRAGMA page_count").fetchone()[0]))
        await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {pages}"))
        try:
            yield
        finally:
            await store.write(lambda tx: tx.execute(f"PRAGMA max_page_count = {cap}"))
        return
    # Session defaults for the transactions that follow; SET is allowed in a read-only
    # transaction, so the way back works while writes are refused.
    await store.write(lambda tx: tx.execute(
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"))
    try:
        yield
    finally:
        await store.write(lambda tx: tx.execute(
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE"))


def reject_inbound_subjects(tx: WriteTx, prefix: str) -> None:
    """A trigger refusing to insert an inbound row whose subject starts with `prefix`:
    a constraint outside our code the parsed fields cannot pass."""
    if dialect_of(tx) == "sqlite":
        tx.execute(f"CREATE TRIGGER reject_prefix BEFORE INSERT ON inbound WHEN NEW.subject"
                   f" LIKE '{prefix}%' BEGIN SELECT RAISE(ABORT, 'refused by the test"
                   " trigger'); END")
        return
    tx.execute("CREATE FUNCTION reject_prefix() RETURNS trigger LANGUAGE plpgsql AS"
               " $$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$")
    tx.execute(f"CREATE TRIGGER reject_prefix BEFORE INSERT ON inbound FOR EACH ROW"
               f" WHEN (NEW.subject LIKE '{prefix}%') EXECUTE FUNCTION reject_prefix()")
