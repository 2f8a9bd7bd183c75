"""Several daemons on one PostgreSQL database: who is alive, and the shared outbox.

Real daemons, a real cluster and one aiosmtpd sink: a backlog is sent once by two
daemons together, a late mark from a daemon whose lease was taken over changes
nothing, a claim in progress is skipped rather than waited for, and the rows a dead
daemon held are sent by another once its lease has run out."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from functools import partial
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from crash_cycles import DaemonProcess, relay_sink, write_config
from daemon_harness import make_settings, running_daemon
from postgres_server import PostgresCluster
from smtp_sink import free_port

from nexusmail.clock import SystemClock
from nexusmail.storage.connections import WriteTx
from nexusmail.storage.pg_store import PgStore, WriteConnection
from nexusmail.storage.postgresql import connect
from nexusmail.tickets.models import OutboxKind
from nexusmail.tickets.outbox import (
    Claim,
    OutgoingMail,
    ShownMail,
    claim_due,
    enqueue_mail,
    mark_failed,
    mark_retry,
    mark_sent,
    renew_claims,
)

CLOCK = SystemClock()
SHOWN = ShownMail("subject", "body", "support@firm.test")


def queue_backlog(n: int) -> partial[list[str]]:
    """A write unit queueing `n` acknowledgements; it returns their Message-IDs."""
    def unit(tx: WriteTx) -> list[str]:
        return [enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.ACKNOWLEDGEMENT, recipient=f"c{i}@example.ro",
            template="acknowledgement", language="en",
            context={"number": i, "tag": f"[#{i}]", "subject": "Caldaia",
                     "customer_name": "Maria"}), now=CLOCK.now(), domain="firm.test")
            for i in range(n)]
    return partial(unit)


async def test_two_daemons_send_a_backlog_once_and_show_each_other(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """Two daemons on one database send a backlog of 80 mails to one relay: each mail
    leaves once, both daemons take part, and each daemon's health lists both by their
    random ids with a heartbeat."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    # A short lease: heartbeats every second, so each daemon soon sees the other.
    first, second = (make_settings(tmp_path / name, relay_port=relay.port,
                                   storage={"database_url": url}, outbound={"lease_s": 3})
                     for name in ("a", "b"))
    async with running_daemon(first) as a, running_daemon(second) as b:
        message_ids = await a.running.store.write(queue_backlog(80))
        got = await relay.handler.wait_for_async(80, within_s=25)
        await asyncio.sleep(0.5)  # a second copy would arrive now
        sent = Counter(m.message_id for m in relay.handler.messages)
        assert sent == Counter(message_ids)
        await asyncio.sleep(1.2)  # a heartbeat of each since both started
        senders = await a.query("SELECT DISTINCT claimed_by FROM outbox WHERE status = 'sent'")
        assert len(senders) == 2, senders
        async with httpx.AsyncClient() as client:
            health = (await client.get(b.web_url + "/api/v1/health")).json()
            metrics = (await client.get(a.web_url + "/metrics")).text
        daemons = health["cluster"]["daemons"]
        assert {d["id"] for d in daemons} == {s for (s,) in senders}
        assert all(d["last_heartbeat"] and d["started_at"] for d in daemons)
        assert "nexusmail_cluster_daemons 2.0" in metrics
    assert len(got) == 80
    assert await a.query("SELECT COUNT(*) FROM workers") == [(0,)]  # both left cleanly


async def test_a_mark_after_the_lease_was_taken_over_changes_nothing(
    postgres_cluster: PostgresCluster
) -> None:
    """Daemon A's lease runs out and B claims the row: A can neither renew nor mark it
    (sent, retry or failed); B's claim is a later sequence and its mark counts."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        await store.write(queue_backlog(1))
        now = CLOCK.now()
        [held] = await store.write(partial(claim_due, now=now, limit=5, worker_id="a",
                                           lease_s=1))
        late = Claim("a", int(held["claim_seq"]))
        assert await store.write(partial(claim_due, now=now, limit=5, worker_id="b",
                                         lease_s=30)) == []  # a's lease still runs
        await asyncio.sleep(2.1)  # the lease is kept to the second
        [taken] = await store.write(partial(claim_due, now=CLOCK.now(), limit=5,
                                            worker_id="b", lease_s=30))
        assert int(taken["claim_seq"]) == late.seq + 1
        row_id = int(held["id"])

        def late_marks(tx: WriteTx) -> list[bool | int]:
            return [renew_claims(tx, now=CLOCK.now(), worker_id="a", lease_s=30),
                    mark_sent(tx, row_id, None, late, sent_at=CLOCK.now(), shown=SHOWN),
                    mark_retry(tx, row_id, late, retry_at=CLOCK.now(), error="late"),
                    mark_failed(tx, row_id, None, late, error="late", shown=None)]

        assert await store.write(late_marks) == [0, False, False, False]
        async with store.read() as conn:
            [row] = await conn.execute_fetchall(
                "SELECT status, attempts, claimed_by, last_error FROM outbox")
        assert tuple(row) == ("pending", 0, "b", "")
        fresh = Claim("b", int(taken["claim_seq"]))
        assert await store.write(lambda tx: mark_retry(
            tx, row_id, fresh, retry_at=CLOCK.now(), error="451 later"))


async def test_a_claim_in_progress_is_skipped_not_waited_for(
    postgres_cluster: PostgresCluster
) -> None:
    """While one daemon's claim is still uncommitted, another daemon's claim returns at
    once with the other due rows (SKIP LOCKED), and the two never share a row."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        await store.write(queue_backlog(6))
        with connect(url) as other, other.transaction():
            first = claim_due(WriteConnection(other), now=CLOCK.now(), limit=4,
                              worker_id="a", lease_s=30)
            started = time.monotonic()
            second = await asyncio.wait_for(store.write(partial(
                claim_due, now=CLOCK.now(), limit=4, worker_id="b", lease_s=30)), 5)
            assert time.monotonic() - started < 2
        assert len(first) == 4
        assert len(second) == 2
        assert not {r["id"] for r in first} & {r["id"] for r in second}


async def test_a_dead_daemons_rows_are_sent_by_another_after_its_lease(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """Rows claimed by a daemon that then died (nothing marks them, nothing renews them)
    wait out its lease, then the live daemon sends each exactly once."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        message_ids = await store.write(queue_backlog(10))
        died = await store.write(partial(claim_due, now=CLOCK.now(), limit=6,
                                         worker_id="dead0000", lease_s=3))
    assert len(died) == 6
    settings = make_settings(tmp_path / "live", relay_port=relay.port,
                             storage={"database_url": url}, outbound={"lease_s": 3})
    started = time.monotonic()
    async with running_daemon(settings) as live:
        await relay.handler.wait_for_async(4, within_s=10)  # the rows nobody held
        assert len(relay.handler.messages) == 4
        await relay.handler.wait_for_async(10, within_s=15)
        took_over_s = time.monotonic() - started
        await asyncio.sleep(0.5)
        assert Counter(m.message_id for m in relay.handler.messages) == Counter(message_ids)
        assert await live.query(
            "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND claim_seq = 2") == [(6,)]
    assert 1.5 < took_over_s < 10, took_over_s


async def test_a_sigkilled_daemons_claims_are_sent_by_the_other_after_its_lease(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    """A daemon process is SIGKILLed while the relay holds mails it claimed; the other
    daemon sends every mail once its lease (2 s) ran out: none lost, and copies only of
    the mails the relay had taken from the killed one (same Message-ID)."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        message_ids = await store.write(queue_backlog(12))
    async with relay_sink(delay_s=0.5) as (relay_port, sink):
        smtp_port = free_port()
        config = write_config(tmp_path / "doomed.toml", tmp_path / "doomed", smtp_port=smtp_port,
                              relay_port=relay_port, database_url=url)
        doomed = DaemonProcess(config, smtp_port, tmp_path / "doomed.log")
        try:
            await doomed.start()
            deadline = time.monotonic() + 15
            while sink.holding == 0:  # the relay has a mail the daemon has not marked
                assert time.monotonic() < deadline, "the daemon never sent"
                await asyncio.sleep(0.01)
            await doomed.kill()
        finally:
            await doomed.kill()
        taken_from_doomed = len(sink.messages)
        sink.delay_s = 0.0
        settings = make_settings(tmp_path / "live", relay_port=relay_port,
                                 storage={"database_url": url}, outbound={"lease_s": 2})
        async with running_daemon(settings) as live:
            deadline = time.monotonic() + 20
            while Counter(m.message_id for m in sink.messages).keys() != set(message_ids):
                assert time.monotonic() < deadline, "not every mail was sent"
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            assert await live.query("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'") \
                == [(0,)]
    copies = Counter(m.message_id for m in sink.messages)
    duplicates = sum(n - 1 for n in copies.values())
    assert 1 <= duplicates <= taken_from_doomed


async def test_a_claim_takes_at_most_its_limit_whatever_the_plan(
    postgres_cluster: PostgresCluster
) -> None:
    """A claim of 5 among 12 due rows claims 5, also under a plan that would run the
    choice of rows again for each row updated (each run skips the rows this very
    statement just claimed as locked and takes the next: 12 were claimed)."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as store:
        await store.write(queue_backlog(12))
        with connect(url) as conn, conn.transaction():
            # What pushes the planner to a semi join that reruns the choice per row
            # (seen for real once the table's statistics had gone stale).
            for setting in ("enable_hashjoin", "enable_mergejoin", "enable_material",
                            "enable_hashagg", "enable_sort", "enable_bitmapscan"):
                conn.execute(f"SET LOCAL {setting} = off")
            claimed = claim_due(WriteConnection(conn), now=CLOCK.now(), limit=5,
                                worker_id="a", lease_s=30)
        assert len(claimed) == 5
        assert await store.write(lambda tx: tx.execute(
            "SELECT COUNT(*) FROM outbox WHERE claimed_by = 'a'").fetchone()[0]) == 5
