"""PostgreSQL's message search vectors, made after the commit by the search indexer:
search finds a message before and after it is indexed, by its latest text, and the
indexer waits for ingest to go quiet (or for its longest delay)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, make_settings, running_daemon
from postgres_server import PostgresCluster

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets import search_indexer
from nexusmail.tickets.cases import NewMessage, add_message
from nexusmail.tickets.models import Direction, MessageKind, Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.search import ListFilter, list_page
from nexusmail.tickets.search_indexer import SearchIndexer

SETTINGS = Settings()


@pytest.fixture
async def pg_store(postgres_cluster: PostgresCluster) -> AsyncIterator[PgStore]:
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        yield store


async def open_case(store: PgStore, clock: FakeClock, subject: str, text: str) -> int:
    number: int = await store.write(lambda tx: open_request(tx, OpenRequest(
        customer_email="ana@example.ro", customer_name="Ana Pop", subject=subject,
        description=text, source=Source.API), now=clock.now(), settings=SETTINGS))
    return number


async def found(store: PgStore, text: str) -> list[int]:
    async with store.read() as conn:
        page = await list_page(conn, ListFilter(text=text))
    return sorted(row["number"] for row in page.rows)


async def scalar(store: PgStore, sql: str, *params: Any) -> Any:
    async with store.read() as conn:
        rows = await conn.execute_fetchall(sql, params)
    return rows[0][0]


async def test_a_message_is_found_before_and_after_it_is_indexed(
    pg_store: PgStore, clock: FakeClock
) -> None:
    """A new message waits in the backlog and is found by its text all the same; the
    indexer empties the backlog into the vectors, and search answers the same."""
    first = await open_case(pg_store, clock, "Centrala", "Instalația de încălzire e oprită.")
    second = await open_case(pg_store, clock, "Caldaia", "Scrivete a bob@example.com.")
    assert await scalar(pg_store, "SELECT count(*) FROM message_search_backlog") == 2
    assert await found(pg_store, "instalatia") == [first]
    assert await found(pg_store, "bob") == [second]

    indexer = SearchIndexer(pg_store, clock)
    assert await indexer.drain() == 2
    assert await scalar(pg_store, "SELECT count(*) FROM message_search_backlog") == 0
    assert await scalar(pg_store, "SELECT count(*) FROM message_search") == 2
    assert await found(pg_store, "instalatia") == [first]
    assert await found(pg_store, "example com") == [second]
    assert await found(pg_store, "caldaia pompa") == []


async def test_a_changed_message_is_found_by_its_new_text_only(
    pg_store: PgStore, clock: FakeClock
) -> None:
    """An indexed message whose text changes goes back to the backlog: its old vector
    is ignored until the indexer makes the new one."""
    number = await open_case(pg_store, clock, "Perdita", "Il rubinetto perde.")
    indexer = SearchIndexer(pg_store, clock)
    await indexer.drain()
    await pg_store.write(lambda tx: tx.execute(
        "UPDATE messages SET body_text = 'La pompa fa rumore.' WHERE intervention_number = ?",
        (number,)))
    assert await found(pg_store, "rubinetto") == []
    assert await found(pg_store, "pompa") == [number]
    await indexer.drain()
    assert await found(pg_store, "rubinetto") == []
    assert await found(pg_store, "pompa") == [number]


async def test_our_own_outgoing_mail_is_never_indexed(pg_store: PgStore, clock: FakeClock
                                                       ) -> None:
    """Outgoing mail (acknowledgements, answers) is not what people wrote: not in the
    backlog, not found; a technician's reply is."""
    number = await open_case(pg_store, clock, "Guasto", "La caldaia non parte.")
    await pg_store.write(lambda tx: add_message(tx, number, NewMessage(
        kind=MessageKind.OPERATOR_REPLY, direction=Direction.OUT, body_text="Ricambio ordinato."),
        now=clock.now()))
    await pg_store.write(lambda tx: add_message(tx, number, NewMessage(
        kind=MessageKind.TECHNICIAN_REPLY, direction=Direction.IN, body_text="Termostato nuovo.",
        from_addr="luca@firm.test", verdict="confirmed", verified=True), now=clock.now()))
    assert await scalar(pg_store, "SELECT count(*) FROM message_search_backlog") == 2
    await SearchIndexer(pg_store, clock).drain()
    assert await found(pg_store, "ricambio") == []
    assert await found(pg_store, "termostato") == [number]


@dataclass
class Activity:
    """What the indexer reads of ingest: whether a mail is being accepted, how many were."""

    idle: asyncio.Event = field(default_factory=asyncio.Event)
    accepted: int = 0


async def test_the_indexer_waits_for_ingest_to_go_quiet_or_for_its_longest_delay(
    pg_store: PgStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While mail is being accepted the backlog waits, until MAX_DELAY_S has passed
    since it was last emptied; idle moments between mails of a stream are not quiet;
    once no mail came for a whole poll it is emptied."""
    monkeypatch.setattr(search_indexer, "POLL_S", 0.02)
    ingest = Activity()  # idle clear: a mail is being accepted
    indexer = SearchIndexer(pg_store, clock, ingest=ingest)
    stop = asyncio.Event()
    task = asyncio.create_task(indexer.run(stop))
    try:
        await open_case(pg_store, clock, "Uno", "Primo guasto.")
        await asyncio.sleep(0.3)
        assert await scalar(pg_store, "SELECT count(*) FROM message_search_backlog") == 1

        clock.advance(timedelta(seconds=search_indexer.MAX_DELAY_S))
        await wait_until_empty(pg_store)
        await open_case(pg_store, clock, "Due", "Secondo guasto.")
        ingest.idle.set()
        for _ in range(15):  # idle between mails, a mail accepted at every poll
            ingest.accepted += 1
            await asyncio.sleep(0.02)
        assert await scalar(pg_store, "SELECT count(*) FROM message_search_backlog") == 1

        await wait_until_empty(pg_store)  # no more mail: quiet
        assert indexer.indexed == 2
    finally:
        stop.set()
        await task


async def wait_until_empty(store: PgStore) -> None:
    for _ in range(250):
        if await scalar(store, "SELECT count(*) FROM message_search_backlog") == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the search backlog was not emptied")


async def test_the_daemon_indexes_what_it_took_in_once_ingest_is_idle(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """A mail taken in over SMTP is in the message search within a few seconds of the
    daemon going quiet, with the backlog empty."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url})
    msg = EmailMessage()
    msg["From"] = "Ana Pop <ana@example.ro>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Centrala nu pornește"
    msg["Message-ID"] = "<idx1@example.ro>"
    msg.set_content("Instalația de încălzire e oprită.")
    async with running_daemon(settings) as daemon:
        assert (await daemon.send(msg.as_bytes()))[0] == 250
        for _ in range(100):
            if await daemon.query("SELECT count(*) FROM message_search") == [(1,)]:
                break
            await asyncio.sleep(0.1)
        assert await daemon.query("SELECT count(*) FROM message_search") == [(1,)]
        assert await daemon.query("SELECT count(*) FROM message_search_backlog") == [(0,)]
