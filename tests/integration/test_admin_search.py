"""The admin list's read side on a real store: FTS5 search, filters, keyset pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.storage.connections import dialect_of
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.attention import Attention
from nexusmail.tickets.cases import NewMessage, add_employee, add_message, close_intervention
from nexusmail.tickets.models import Direction, MessageKind, Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.search import ListFilter, fts_query, list_page, request_types
from nexusmail.tickets.store import Store, connect, migrate

SETTINGS = Settings()
KEYS = [b"k" * 32]


def open_case(tx: sqlite3.Connection, clock: FakeClock, subject: str, *,
              customer: str = "cliente@example.it", name: str = "", text: str = "",
              request_type: str = "") -> int:
    return open_request(tx, OpenRequest(
        customer_email=customer, customer_name=name, subject=subject,
        description=text or subject, source=Source.API, request_type=request_type),
        now=clock.now(), settings=SETTINGS)


def reply(tx: sqlite3.Connection, clock: FakeClock, number: int, text: str, *,
          verified: bool = True) -> int:
    return add_message(tx, number, NewMessage(
        kind=MessageKind.TECHNICIAN_REPLY, direction=Direction.IN, body_text=text,
        from_addr="luca@firm.test", verdict="confirmed", verified=verified), now=clock.now())


async def numbers(store: Store, f: ListFilter) -> list[int]:
    async with store.read() as conn:
        page = await list_page(conn, f)
    return [row["number"] for row in page.rows]


@pytest.mark.parametrize(("typed", "expected"), [
    ("caldaia", '"caldaia"'),
    ("  caldaia   rotta ", '"caldaia" "rotta"'),
    ('a "quoted" AND NEAR(x) col:y *', '"a" "quoted" "AND" "NEAR(x)" "col:y" "*"'),
    ("", None),
    ('"" ', None),
])
def test_fts_query_quotes_every_word(typed: str, expected: str | None) -> None:
    """Whatever is typed becomes plain quoted words: no FTS5 operator, no syntax error."""
    assert fts_query(typed) == expected


async def test_search_finds_subjects_descriptions_and_replies(
    store: Store, clock: FakeClock
) -> None:
    """Words from a subject, a description or any message find their intervention."""
    def seed(tx: sqlite3.Connection) -> None:
        open_case(tx, clock, "Caldaia in blocco", text="Errore E04 sulla caldaia")
        two = open_case(tx, clock, "Condizionatore", text="Rumore di notte")
        reply(tx, clock, two, "Porto la termocoppia giovedì")
        open_case(tx, clock, "Instalaţie centrală", text="Vă rog o programare")

    await store.write(seed)
    assert await numbers(store, ListFilter(text="caldaia")) == [1]
    assert await numbers(store, ListFilter(text="E04")) == [1]
    assert await numbers(store, ListFilter(text="TERMOCOPPIA")) == [2]
    assert await numbers(store, ListFilter(text="giovedi")) == [2], "accents fold"
    # Romanian: cedilla (ţ) stored, comma below (ț) typed, or no diacritic at all.
    assert await numbers(store, ListFilter(text="instalație")) == [3]
    assert await numbers(store, ListFilter(text="instalatie centrala")) == [3]
    assert await numbers(store, ListFilter(text="caldaia termocoppia")) == []
    assert await numbers(store, ListFilter(text='"AND" OR NEAR(')) == []


async def test_search_follows_updates_of_messages(store: Store, clock: FakeClock) -> None:
    """A message's text written later (the outbox composing a mail) is searchable; the
    old text no longer is."""
    def seed(tx: sqlite3.Connection) -> int:
        number = open_case(tx, clock, "Caldaia")
        return reply(tx, clock, number, "prima versione")

    message_id = await store.write(seed)
    await store.write(lambda tx: tx.execute(
        "UPDATE messages SET body_text = 'seconda stesura' WHERE id = ?", (message_id,)))
    assert await numbers(store, ListFilter(text="stesura")) == [1]
    assert await numbers(store, ListFilter(text="prima")) == []


async def test_our_own_outgoing_mails_are_not_searched(store: Store, clock: FakeClock) -> None:
    """Words only in an acknowledgement we sent find nothing (template boilerplate would
    match every case); the customer's own words still do."""
    def seed(tx: sqlite3.Connection) -> int:
        number = open_case(tx, clock, "Caldaia", text="perdita dal tubo")
        # What the outbox worker does once it has composed the acknowledgement.
        tx.execute("UPDATE messages SET subject = 'Abbiamo ricevuto', body_text = 'ricontatteremo'"
                   " WHERE intervention_number = ? AND direction = 'out'", (number,))
        return number

    number = await store.write(seed)
    assert await numbers(store, ListFilter(text="ricontatteremo")) == []
    assert await numbers(store, ListFilter(text="perdita")) == [1]

    def forget(tx: sqlite3.Connection) -> None:
        tx.execute("DELETE FROM outbox WHERE intervention_number = ?", (number,))
        tx.execute("DELETE FROM messages WHERE intervention_number = ? AND direction = 'out'",
                   (number,))
        # Updating and deleting rows that were never indexed leaves the index sound
        # (FTS5's own check; PostgreSQL's index is kept by the server itself).
        if dialect_of(tx) == "sqlite":
            tx.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")

    await store.write(forget)


async def test_filters_by_status_assignee_customer_and_type(
    store: Store, clock: FakeClock
) -> None:
    """Each filter alone and together picks exactly the matching interventions."""
    def seed(tx: sqlite3.Connection) -> None:
        now = clock.now()
        add_employee(tx, email="luca@firm.test", name="Luca", language="it", now=now)
        add_employee(tx, email="ion@firm.test", name="Ion", language="ro", now=now)
        open_case(tx, clock, "A", customer="rossi@example.it", name="Rossi Srl",
                  request_type="Guasto")
        open_case(tx, clock, "B", customer="bianchi@example.it", name="Bar Bianchi",
                  request_type="guasto")
        open_case(tx, clock, "C", customer="rossi@example.it", request_type="Installazione")
        assign(tx, 1, "luca@firm.test", now=now, settings=SETTINGS, reply_keys=KEYS)
        assign(tx, 2, "ion@firm.test", now=now, settings=SETTINGS, reply_keys=KEYS)
        close_intervention(tx, 2, now=now, author="test")

    await store.write(seed)
    assert await numbers(store, ListFilter(status="open")) == [3, 1]
    assert await numbers(store, ListFilter(status="closed")) == [2]
    assert await numbers(store, ListFilter(employee_id=1)) == [1]
    assert await numbers(store, ListFilter(customer="rossi")) == [3, 1]
    assert await numbers(store, ListFilter(customer="bar bian")) == [2]
    assert await numbers(store, ListFilter(customer="%")) == [], "LIKE wildcards are literal"
    assert await numbers(store, ListFilter(request_type="GUASTO")) == [2, 1]
    assert await numbers(store, ListFilter(request_type="guasto", status="open")) == [1]
    async with store.read() as conn:
        assert await request_types(conn) == ["Guasto", "Installazione"]


async def test_needs_attention_filters_match_the_flags(store: Store, clock: FakeClock) -> None:
    """rejected / unclear / unverified / unassigned list what needs_attention flags."""
    def seed(tx: sqlite3.Connection) -> None:
        now = clock.now()
        add_employee(tx, email="luca@firm.test", name="Luca", language="it", now=now)
        add_employee(tx, email="ion@firm.test", name="Ion", language="ro", now=now)
        for subject in ("rejected", "unclear", "unverified", "unassigned", "rejected+pending"):
            open_case(tx, clock, subject)
        for number in (1, 2, 3, 5):
            assign(tx, number, "luca@firm.test", now=now, settings=SETTINGS, reply_keys=KEYS)
        assign(tx, 5, "ion@firm.test", now=now, settings=SETTINGS, reply_keys=KEYS)
        tx.execute("UPDATE assignments SET status = 'rejected' WHERE intervention_number IN"
                   " (1, 5) AND employee_id = 1")
        tx.execute("UPDATE assignments SET status = 'unclear' WHERE intervention_number = 2")
        tx.execute("UPDATE assignments SET status = 'confirmed' WHERE intervention_number = 3")
        reply(tx, clock, 3, "sono il cugino", verified=False)

    await store.write(seed)
    for attention, expected in [(Attention.REJECTED, [1]), (Attention.UNCLEAR, [2]),
                                (Attention.UNVERIFIED, [3]), (Attention.UNASSIGNED, [4])]:
        assert await numbers(store, ListFilter(attention=attention)) == expected, attention
        async with store.read() as conn:
            page = await list_page(conn, ListFilter(attention=attention))
        assert all(attention in row["needs_attention"] for row in page.rows)


async def test_pages_walk_forward_and_back_by_number(store: Store, clock: FakeClock) -> None:
    """120 cases in pages of 50: 120..71, 70..21, 20..1, then back to 70..21."""
    def seed(tx: sqlite3.Connection) -> None:
        for n in range(120):
            open_case(tx, clock, f"case {n}")

    await store.write(seed)
    async with store.read() as conn:
        first = await list_page(conn, ListFilter())
        second = await list_page(conn, ListFilter(), before=first.older)
        third = await list_page(conn, ListFilter(), before=second.older)
        back = await list_page(conn, ListFilter(), after=third.newer)
        top = await list_page(conn, ListFilter(), after=back.newer)
    assert [r["number"] for r in first.rows] == list(range(120, 70, -1))
    assert first.newer is None
    assert [r["number"] for r in second.rows] == list(range(70, 20, -1))
    assert [r["number"] for r in third.rows] == list(range(20, 0, -1))
    assert third.older is None
    assert [r["number"] for r in back.rows] == list(range(70, 20, -1))
    assert [r["number"] for r in top.rows] == list(range(120, 70, -1))
    assert top.newer is None


def test_migration_backfills_the_index_of_existing_rows(tmp_path: Path) -> None:
    """Rows stored before 0005 are searchable once it is applied."""
    conn = connect(tmp_path / "db.sqlite3")
    migrate(conn)
    # Back to the schema before 0005, with data in it.
    conn.executescript("""
        DROP TRIGGER interventions_fts_insert; DROP TRIGGER interventions_fts_delete;
        DROP TRIGGER interventions_fts_update; DROP TRIGGER messages_fts_insert;
        DROP TRIGGER messages_fts_delete; DROP TRIGGER messages_fts_update;
        DROP TABLE interventions_fts; DROP TABLE messages_fts; DROP TABLE operators;
        DROP INDEX interventions_by_customer; DROP INDEX interventions_by_request_type;
        DROP INDEX assignments_by_employee; DROP INDEX messages_unverified_replies;
        DELETE FROM schema_migrations WHERE name = '0005_admin.sql';
    """)
    clock = FakeClock()
    conn.execute("BEGIN")
    number = open_case(conn, clock, "Vecchia caldaia", text="ferma da ieri")
    reply(conn, clock, number, "arrivo con la pompa")
    conn.execute("COMMIT")
    assert migrate(conn) == ["0005_admin.sql"]
    found = conn.execute(
        "SELECT rowid FROM interventions_fts WHERE interventions_fts MATCH 'ieri'").fetchall()
    assert [tuple(r) for r in found] == [(number,)]
    found = conn.execute(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH 'pompa'").fetchall()
    assert len(found) == 1
    conn.close()

