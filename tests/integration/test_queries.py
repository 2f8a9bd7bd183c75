"""The read side over a real store: thread loading cost, search, inbound log, raw mail."""

from __future__ import annotations

import sqlite3
import time

import pytest

from nexusmail.clock import FakeClock
from nexusmail.tickets import queries
from nexusmail.tickets.cases import (
    NewIntervention,
    NewMessage,
    StoredAttachment,
    add_message,
    create_intervention,
    find_or_create_customer,
)
from nexusmail.tickets.models import Direction, MessageKind, Source
from nexusmail.tickets.store import Store

DIGEST = "ab" * 32


def open_case(tx: sqlite3.Connection, clock: FakeClock, subject: str = "Caldaia") -> int:
    customer = find_or_create_customer(tx, email="mario@example.it", name="Mario", now=clock.now())
    return create_intervention(tx, NewIntervention(
        customer_id=customer.customer_id, contact_id=customer.contact_id, subject=subject,
        description="Non parte.", source=Source.EMAIL), now=clock.now())


@pytest.mark.sqlite_only(reason="counts statements with sqlite3's trace callback")
async def test_a_long_thread_loads_in_a_fixed_number_of_queries(
    store: Store, clock: FakeClock
) -> None:
    """500 messages with attachments load in a handful of queries (no N+1), quickly,
    each attachment under its own message."""

    def long_thread(tx: sqlite3.Connection) -> int:
        number = open_case(tx, clock)
        for i in range(500):
            files = [StoredAttachment(f"f{i}-{k}.pdf", "application/pdf", k + 1, DIGEST)
                     for k in range(i % 3)]
            add_message(tx, number, NewMessage(
                kind=MessageKind.CUSTOMER_MAIL, direction=Direction.IN, body_text=f"m{i}",
                to_addrs=["support@firm.test"], attachments=files), now=clock.now())
        return number

    number = await store.write(long_thread)
    statements: list[str] = []
    async with store.read() as conn:
        await conn.set_trace_callback(statements.append)
        started = time.perf_counter()
        detail = await queries.get_intervention(conn, number)
        elapsed = time.perf_counter() - started
        await conn.set_trace_callback(None)  # type: ignore[arg-type]  # sqlite3 takes None
    assert detail is not None
    assert len(detail["messages"]) == 500
    # case, assignments, messages, attachments, activities, the action sequence
    assert len(statements) <= 6, statements
    assert elapsed < 1.0
    for i, message in enumerate(detail["messages"]):
        assert message["body_text"] == f"m{i}"
        assert message["to"] == ["support@firm.test"]
        assert [a["filename"] for a in message["attachments"]] == [
            f"f{i}-{k}.pdf" for k in range(i % 3)]


async def test_absent_things_are_none(store: Store) -> None:
    """Lookups of ids that do not exist answer None, not an error."""
    async with store.read() as conn:
        assert await queries.get_intervention(conn, 1) is None
        assert await queries.get_attachment(conn, 1) is None
        assert await queries.get_message_raw_sha(conn, 1) is None
        assert await queries.get_raw_message(conn, DIGEST) is None
        assert await queries.get_employee(conn, 1) is None


async def test_search_matches_subject_or_description(store: Store, clock: FakeClock) -> None:
    """q matches either column, case-insensitively for ASCII, and counts the total."""

    def two(tx: sqlite3.Connection) -> None:
        open_case(tx, clock, "Caldaia guasta")
        open_case(tx, clock, "Condizionatore")

    await store.write(two)
    async with store.read() as conn:
        by_subject = await queries.list_interventions(conn, q="CALDAIA")
        by_description = await queries.list_interventions(conn, q="non parte", limit=1)
    assert [i["subject"] for i in by_subject["items"]] == ["Caldaia guasta"]
    assert by_description["total"] == 2
    assert len(by_description["items"]) == 1


async def test_inbound_log_newest_first_by_outcome(store: Store) -> None:
    """The inbound log lists newest first and filters by outcome."""

    def mails(tx: sqlite3.Connection) -> None:
        for i, outcome in enumerate(["new_request", "noise", "noise"]):
            tx.execute(
                "INSERT INTO inbound (raw_sha256, size, source, outcome, envelope_to,"
                " received_at) VALUES (?, 10, 'smtp', ?, '[\"support@firm.test\"]', 'now')",
                (f"{i:064x}", outcome))

    await store.write(mails)
    async with store.read() as conn:
        everything = await queries.inbound_log(conn, limit=10)
        noise = await queries.inbound_log(conn, limit=1, outcome="noise")
    assert [row["id"] for row in everything] == [3, 2, 1]
    assert everything[0]["envelope_to"] == ["support@firm.test"]
    assert [row["id"] for row in noise] == [3]
