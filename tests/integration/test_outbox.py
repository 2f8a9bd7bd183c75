"""The outbox worker against a real store and a real aiosmtpd sink on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import mailbox
import random
import sqlite3
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from smtp_sink import CaptureHandler, free_port, start_sink

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.clock import FakeClock, iso
from nexusmail.config import MailSettings, OutboundSettings
from nexusmail.dispatch.compose import Composer
from nexusmail.dispatch.outbox_worker import OutboxWorker
from nexusmail.dispatch.transport import (
    MaildirTransport,
    SmtpRelayTransport,
    Transport,
    build_transport,
)
from nexusmail.mail.headers import OWN_MAIL_HEADER
from nexusmail.storage.connections import Storage
from nexusmail.tickets.cases import NewIntervention, create_intervention, find_or_create_customer
from nexusmail.tickets.models import MessageKind, OutboxKind, Source
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.store import Store

MAIL = MailSettings(company_name="Termoidraulica Rossi", support_addresses=("help@rossi.example",))
SENDER = "bounces@rossi.example"
CUSTOMER = "maria@example.org"


class Sink:
    """A started sink; `handler` captures, `port` is where it listens."""

    def __init__(self) -> None:
        self.handler = CaptureHandler()
        self.controller = start_sink(self.handler)
        self.port: int = self.controller.port

    def restart(self) -> None:
        """Stop and start again on the same port: every client connection is dropped."""
        self.controller.stop()
        self.controller = start_sink(self.handler, port=self.port)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    started = await asyncio.to_thread(Sink)
    yield started
    await asyncio.to_thread(started.controller.stop)


def outbound(port: int, **overrides: Any) -> OutboundSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1", "port": port, "timeout_s": 5.0, "retry_base_s": 60.0,
        "retry_max_s": 3600.0, "max_attempts": 4, "poll_interval_s": 30.0,
    }
    values.update(overrides)
    return OutboundSettings(**values)


@pytest.fixture
async def transports() -> AsyncIterator[Callable[[Transport], Transport]]:
    """Register transports to be closed after the test (no sockets left behind)."""
    opened: list[Transport] = []

    def keep(transport: Transport) -> Transport:
        opened.append(transport)
        return transport

    yield keep
    for transport in opened:
        await transport.close()


def make_worker(
    store: Store, clock: FakeClock, transport: Transport, settings: OutboundSettings,
    **kwargs: Any,
) -> OutboxWorker:
    blobs = kwargs.pop("blobs", None)
    composer = Composer(MAIL, clock=clock, blob_loader=blobs.get if blobs else None)
    return OutboxWorker(store, transport, composer, clock, settings, SENDER,
                        rng=random.Random(3), **kwargs)


async def enqueue_ack(
    store: Store, clock: FakeClock, *, context: dict[str, Any] | None = None,
    language: str = "it", recipient: str = CUSTOMER,
) -> str:
    """An intervention and its acknowledgement, committed together as ingest does."""
    now = clock.now()

    def tx(conn: sqlite3.Connection) -> str:
        customer = find_or_create_customer(conn, email=recipient, name="Maria", now=now)
        number = create_intervention(
            conn, NewIntervention(customer.customer_id, "Caldaia in blocco", "", Source.EMAIL),
            now=now)
        ctx = {"number": number, "tag": f"[#{number}]", "subject": "Caldaia in blocco",
               "customer_name": "Maria"} if context is None else context
        mail = OutgoingMail(kind=OutboxKind.ACKNOWLEDGEMENT, recipient=recipient,
                            template="acknowledgement", language=language, context=ctx,
                            intervention_number=number,
                            thread_kind=MessageKind.ACKNOWLEDGEMENT)
        return enqueue_mail(conn, mail, now=now, domain="rossi.example")

    return await store.write(tx)


async def outbox_row(store: Store, message_id: str) -> dict[str, Any]:
    async with store.read() as conn:
        rows = list(await conn.execute_fetchall(
            "SELECT * FROM outbox WHERE message_id = ?", (message_id,)))
    return dict(rows[0])


async def thread_message(store: Store, message_id: str) -> dict[str, Any]:
    async with store.read() as conn:
        rows = list(await conn.execute_fetchall(
            "SELECT * FROM messages WHERE message_id = ?", (message_id,)))
    return dict(rows[0])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_queued_mail_is_delivered_with_its_fixed_message_id(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A queued acknowledgement reaches the relay under the Message-ID fixed at enqueue."""
    message_id = await enqueue_ack(store, clock)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(sink.port))),
                         outbound(sink.port))
    assert await worker.send_due() == 1
    (got,) = await sink.handler.wait_for_async(1)
    assert got.message_id == message_id
    assert got.mail_from == SENDER
    assert got.rcpt_tos == [CUSTOMER]
    msg = got.message()
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg[OWN_MAIL_HEADER] == message_id
    assert msg["Subject"].startswith("[#1] Abbiamo ricevuto")
    row = await outbox_row(store, message_id)
    assert (row["status"], row["attempts"], row["sent_at"]) == ("sent", 1, iso(clock.now()))
    assert await worker.send_due() == 0  # nothing left: sent rows are not sent again


async def test_thread_message_shows_what_was_sent(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """After sending, the thread message carries the subject, body and From we sent."""
    message_id = await enqueue_ack(store, clock, language="ro")
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(sink.port))),
                         outbound(sink.port))
    await worker.send_due()
    thread = await thread_message(store, message_id)
    assert thread["subject"].startswith("[#1] Am primit solicitarea dumneavoastră")
    assert "Vă mulțumim" in thread["body_text"]
    assert thread["from_addr"] == "help@rossi.example"
    assert json.loads(thread["extra"])["delivery"] == "sent"


async def test_451_is_retried_after_backoff_with_the_same_message_id(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A 451 keeps the row pending; it is retried only once the backoff has passed."""
    message_id = await enqueue_ack(store, clock)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(sink.port))),
                         outbound(sink.port))
    sink.handler.refuse_next(1, code=451)
    assert await worker.send_due() == 1
    row = await outbox_row(store, message_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "451" in row["last_error"]
    delay = at(row["next_attempt_at"]) - clock.now()
    assert timedelta(seconds=48) <= delay <= timedelta(seconds=72)  # 60 s ±20%
    clock.advance(timedelta(seconds=40))
    assert await worker.send_due() == 0  # not before its time
    assert sink.handler.messages == []
    clock.advance(timedelta(seconds=40))
    assert await worker.send_due() == 1
    (got,) = await sink.handler.wait_for_async(1)
    assert got.message_id == message_id
    row = await outbox_row(store, message_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_550_fails_at_once(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A 550 for the recipient marks the row failed and the thread shows why; no retry."""
    message_id = await enqueue_ack(store, clock)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(sink.port))),
                         outbound(sink.port))
    sink.handler.refuse_next(1, code=550, stage="rcpt")
    await worker.send_due()
    row = await outbox_row(store, message_id)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "550" in row["last_error"]
    extra = json.loads((await thread_message(store, message_id))["extra"])
    assert extra["delivery"] == "failed"
    assert "550" in extra["delivery_error"]
    clock.advance(timedelta(days=1))
    assert await worker.send_due() == 0
    assert sink.handler.messages == []


async def test_relay_down_is_retried_with_growing_backoff(
    store: Store, clock: FakeClock, transports: Callable[[Transport], Transport]
) -> None:
    """Connection refused is transient: attempts count up, delays double (with jitter)."""
    closed = free_port()
    message_id = await enqueue_ack(store, clock)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(closed))),
                         outbound(closed))
    delays = []
    for attempt in (1, 2, 3):
        assert await worker.send_due() == 1
        row = await outbox_row(store, message_id)
        assert (row["status"], row["attempts"]) == ("pending", attempt)
        delay = at(row["next_attempt_at"]) - clock.now()
        delays.append(delay.total_seconds())
        clock.advance(delay)
    base = [60, 120, 240]
    for got, expected in zip(delays, base, strict=True):
        assert expected * 0.8 - 1 <= got <= expected * 1.2 + 1


async def test_dead_relay_pauses_sending_until_it_is_back(
    store: Store, clock: FakeClock, transports: Callable[[Transport], Transport]
) -> None:
    """One refused connection pauses the queue (no attempt per row); after the pause
    and with the relay back, every queued mail goes out."""
    port = free_port()
    ids = [await enqueue_ack(store, clock, recipient=f"c{i}@example.org") for i in range(3)]
    settings = outbound(port)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings,
                         concurrency=1)
    assert await worker.send_due() == 1
    attempts = [(await outbox_row(store, mid))["attempts"] for mid in ids]
    assert sorted(attempts) == [0, 0, 1]
    assert await worker.send_due() == 0  # paused: the other rows are not tried
    handler = CaptureHandler()
    controller = await asyncio.to_thread(start_sink, handler, port=port)
    try:
        clock.advance(timedelta(seconds=80))
        assert await worker.send_due() == 3
        got = await handler.wait_for_async(3)
        assert sorted(c.message_id for c in got) == sorted(ids)
        assert worker.relay_paused_until is None
    finally:
        await worker.transport.close()
        await asyncio.to_thread(controller.stop)


async def test_max_attempts_then_failed(
    store: Store, clock: FakeClock, transports: Callable[[Transport], Transport]
) -> None:
    """After max_attempts transient failures the row is failed and left alone."""
    closed = free_port()
    settings = outbound(closed, max_attempts=2)
    message_id = await enqueue_ack(store, clock)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings)
    await worker.send_due()
    clock.advance(timedelta(hours=1))
    await worker.send_due()
    row = await outbox_row(store, message_id)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert row["last_error"].startswith("gave up after 2 attempts")
    clock.advance(timedelta(days=1))
    assert await worker.send_due() == 0


class Crash(Exception):
    """Stands for the process dying right after the relay accepted the mail."""


class CrashAfterSend:
    """Delegates to a real transport, then 'crashes' before the worker can mark the row."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def send(self, message: EmailMessage, *, sender: str, recipients: list[str]) -> None:
        await self.inner.send(message, sender=sender, recipients=recipients)
        raise Crash

    async def close(self) -> None:
        await self.inner.close()


async def test_crash_after_send_resends_the_same_message_id(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A crash between the relay's 250 and the sent mark resends under the same Message-ID,
    once the crashed worker's lease on the row has run out."""
    message_id = await enqueue_ack(store, clock)
    settings = outbound(sink.port).model_copy(update={"lease_s": 1.0})
    doomed = make_worker(store, clock,
                         transports(CrashAfterSend(SmtpRelayTransport(settings))), settings)
    with pytest.raises(Crash):
        await doomed.send_due()
    row = await outbox_row(store, message_id)
    assert (row["status"], row["attempts"]) == ("pending", 0)  # the mark never happened
    restarted = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings)
    assert await restarted.send_due() == 0  # still held by the crashed worker's lease
    clock.advance(timedelta(seconds=2))  # the lease on SQLite's (injected) clock
    await asyncio.sleep(2.1)  # and on PostgreSQL's (the server's, to the second)
    assert await restarted.send_due() == 1
    got = await sink.handler.wait_for_async(2)
    assert [c.message_id for c in got] == [message_id, message_id]
    assert (await outbox_row(store, message_id))["status"] == "sent"


async def test_template_error_fails_the_row_not_the_pass(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A row whose template cannot render is failed; the other rows still go out."""
    broken = await enqueue_ack(store, clock, context={"tag": "[#1]", "subject": "x"})
    good = await enqueue_ack(store, clock, recipient="ion@example.org")
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(sink.port))),
                         outbound(sink.port))
    assert await worker.send_due() == 2
    row = await outbox_row(store, broken)
    assert row["status"] == "failed"
    assert "number" in row["last_error"]
    (got,) = await sink.handler.wait_for_async(1)
    assert got.message_id == good


async def test_connection_is_reused_and_reopened_after_the_relay_drops_it(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """Mails share one relay connection; when the relay drops it, the next send reconnects."""
    transport = SmtpRelayTransport(outbound(sink.port), max_connections=1)
    worker = make_worker(store, clock, transports(transport), outbound(sink.port))
    for _ in range(3):
        await enqueue_ack(store, clock)
    assert await worker.send_due() == 3
    assert transport.connections_opened == 1
    await asyncio.to_thread(sink.restart)
    message_id = await enqueue_ack(store, clock)
    assert await worker.send_due() == 1
    got = await sink.handler.wait_for_async(4)
    assert got[-1].message_id == message_id
    assert (await outbox_row(store, message_id))["status"] == "sent"
    assert transport.connections_opened == 2


async def test_many_rows_go_out_in_parallel_once_each(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A batch is sent with bounded concurrency, every Message-ID exactly once."""
    ids = {await enqueue_ack(store, clock, recipient=f"c{i}@example.org") for i in range(12)}
    transport = SmtpRelayTransport(outbound(sink.port), max_connections=4)
    worker = make_worker(store, clock, transports(transport), outbound(sink.port))
    assert await worker.send_due(limit=5) == 5
    assert await worker.send_due() == 7
    got = await sink.handler.wait_for_async(12)
    assert sorted(c.message_id for c in got) == sorted(ids)
    assert transport.connections_opened <= 4


class CountUnmarkedOnAccept:
    """Delegates to a real transport; each time the relay accepts a mail, counts the
    accepted mails whose rows the database still has pending: what a crash at that
    moment would send again."""

    def __init__(self, inner: Transport, store: Storage) -> None:
        self.inner = inner
        self.store = store
        self.accepted: list[str] = []
        self.most_unmarked = 0

    async def send(self, message: EmailMessage, *, sender: str, recipients: list[str]) -> None:
        await self.inner.send(message, sender=sender, recipients=recipients)
        self.accepted.append(str(message["Message-ID"]).strip("<>"))
        async with self.store.read() as db:  # a reader beside the worker's writes
            pending = {r[0] for r in await db.execute_fetchall(
                "SELECT message_id FROM outbox WHERE status = 'pending'")}
        self.most_unmarked = max(self.most_unmarked,
                                 sum(1 for m in self.accepted if m in pending))

    async def close(self) -> None:
        await self.inner.close()


async def test_a_crash_resends_at_most_one_mail_per_relay_connection(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """Each sent row is marked before its connection carries the next mail: at any
    moment at most one accepted-but-unmarked mail per connection (4 here, 40 rows)."""
    ids = [await enqueue_ack(store, clock, recipient=f"c{i}@example.org") for i in range(40)]
    settings = outbound(sink.port)
    probe = CountUnmarkedOnAccept(SmtpRelayTransport(settings, max_connections=4),
                                  store)
    worker = make_worker(store, clock, transports(probe), settings, concurrency=4)
    assert await worker.send_due() == 40
    assert sorted(probe.accepted) == sorted(ids)
    assert 1 <= probe.most_unmarked <= 4
    for message_id in ids:
        assert (await outbox_row(store, message_id))["status"] == "sent"
        assert json.loads((await thread_message(store, message_id))["extra"])["delivery"] == "sent"


async def test_run_sends_at_once_on_notify_and_stops_promptly(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """notify() wakes the loop long before the poll interval; stop ends it at once."""
    settings = outbound(sink.port, poll_interval_s=30.0)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.05)  # let the loop go idle on its 30 s wait
    message_id = await enqueue_ack(store, clock)
    worker.notify()
    (got,) = await sink.handler.wait_for_async(1, within_s=3)
    assert got.message_id == message_id
    stop.set()
    await asyncio.wait_for(task, timeout=2)


async def test_due_mail_waits_while_mail_is_being_received_then_goes(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """While ingest is busy a due mail is held (wake-ups do not send it); once ingest
    goes quiet it leaves at once, well before the hold would have ended."""
    settings = outbound(sink.port, poll_interval_s=30.0, yield_to_ingest_s=60.0)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings)
    receiving = asyncio.Event()  # clear: a mail is being accepted
    worker.yield_to_ingest(receiving)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    message_id = await enqueue_ack(store, clock)
    worker.notify()
    await asyncio.sleep(0.3)
    assert sink.handler.messages == []
    assert (await outbox_row(store, message_id))["status"] == "pending"
    receiving.set()
    (got,) = await sink.handler.wait_for_async(1, within_s=3)
    assert got.message_id == message_id
    stop.set()
    await asyncio.wait_for(task, timeout=2)


async def test_held_mail_goes_after_yield_to_ingest_s_even_while_busy(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """A steady stream of incoming mail cannot starve the outbox: a row held for ingest
    goes once it has been due for yield_to_ingest_s, busy or not."""
    settings = outbound(sink.port, yield_to_ingest_s=5.0)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings)
    worker.yield_to_ingest(asyncio.Event())  # never set: always receiving
    message_id = await enqueue_ack(store, clock)
    assert await worker.send_due() == 0
    assert worker.held_until == clock.now() + timedelta(seconds=5)
    clock.advance(timedelta(seconds=4))
    assert await worker.send_due() == 0
    clock.advance(timedelta(seconds=1))
    assert await worker.send_due() == 1
    assert worker.held_until is None
    (got,) = await sink.handler.wait_for_async(1)
    assert got.message_id == message_id


async def test_zero_yield_to_ingest_sends_at_once_while_busy(
    store: Store, clock: FakeClock, sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """yield_to_ingest_s = 0 turns the hold off: mail goes while ingest is busy."""
    settings = outbound(sink.port, yield_to_ingest_s=0.0)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(settings)), settings)
    worker.yield_to_ingest(asyncio.Event())
    await enqueue_ack(store, clock)
    assert await worker.send_due() == 1


async def test_attachments_are_sent_from_the_blob_store(
    store: Store, clock: FakeClock, sink: Sink, tmp_path: Path,
    transports: Callable[[Transport], Transport],
) -> None:
    """Context attachments are read from the blob store (off the loop) and sent intact."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    report = "Rapporto d'intervento: è tutto ok".encode() * 100
    digest = await asyncio.to_thread(blobs.put, report)
    context = {"number": 1, "tag": "[#1]", "subject": "s", "attachments": [
        {"sha256": digest, "filename": "rapporto.txt", "content_type": "text/plain"}]}
    await enqueue_ack(store, clock, context=context)
    worker = make_worker(store, clock, transports(SmtpRelayTransport(outbound(sink.port))),
                         outbound(sink.port), blobs=LocalBlobStore(tmp_path / "blobs"))
    await worker.send_due()
    (got,) = await sink.handler.wait_for_async(1)
    (part,) = list(got.message().iter_attachments())
    assert part.get_filename() == "rapporto.txt"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert hashlib.sha256(payload).hexdigest() == digest


async def test_maildir_transport_writes_a_readable_mail(
    store: Store, clock: FakeClock, tmp_path: Path
) -> None:
    """With no relay host, each mail is a file in <data_dir>/outgoing/new any client reads."""
    transport = build_transport(OutboundSettings(), tmp_path)
    assert isinstance(transport, MaildirTransport)
    message_id = await enqueue_ack(store, clock, language="en")
    worker = make_worker(store, clock, transport, OutboundSettings())
    assert await worker.send_due() == 1
    await transport.close()
    files = list((tmp_path / "outgoing" / "new").iterdir())
    assert len(files) == 1
    box = mailbox.Maildir(tmp_path / "outgoing", create=False)
    (msg,) = list(box)
    assert msg["Message-ID"] == f"<{message_id}>"
    assert msg["Return-Path"] == f"<{SENDER}>"
    assert msg["Delivered-To"] == CUSTOMER
    assert str(msg["Subject"]).startswith("[#1] We received your request")
    assert (await outbox_row(store, message_id))["status"] == "sent"


# -- STARTTLS + AUTH (needs trustme for a throwaway CA) -------------------------------


@pytest.fixture
def tls_pair() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "sink.test")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_starttls_and_auth_against_the_relay(
    store: Store, clock: FakeClock, tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
    transports: Callable[[Transport], Transport],
) -> None:
    """With starttls and a username the worker upgrades to TLS and logs in before sending."""
    server_ctx, client_ctx = tls_pair
    handler = CaptureHandler()
    controller = await asyncio.to_thread(
        start_sink, handler, users={"nexus": "s3cret"}, tls_context=server_ctx,
        require_starttls=True)
    settings = outbound(controller.port, starttls=True, username="nexus", password="s3cret")
    transport = transports(SmtpRelayTransport(settings, tls_context=client_ctx))
    try:
        message_id = await enqueue_ack(store, clock)
        worker = make_worker(store, clock, transport, settings)
        await worker.send_due()
        (got,) = await handler.wait_for_async(1)
        assert got.message_id == message_id
        assert got.auth_login == "nexus"
        assert "s3cret" not in repr(settings)
    finally:
        await transport.close()
        await asyncio.to_thread(controller.stop)


async def test_wrong_relay_password_is_retried_not_failed(
    store: Store, clock: FakeClock, tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
    transports: Callable[[Transport], Transport],
) -> None:
    """A refused login is a configuration fault: the mail stays pending for a later try."""
    server_ctx, client_ctx = tls_pair
    controller = await asyncio.to_thread(
        start_sink, users={"nexus": "s3cret"}, tls_context=server_ctx, require_starttls=True)
    try:
        settings = outbound(controller.port, starttls=True, username="nexus",
                            password="wrong")
        message_id = await enqueue_ack(store, clock)
        worker = make_worker(
            store, clock, transports(SmtpRelayTransport(settings, tls_context=client_ctx)),
            settings)
        await worker.send_due()
        row = await outbox_row(store, message_id)
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert "authentication" in row["last_error"]
        assert "wrong" not in row["last_error"]
    finally:
        await asyncio.to_thread(controller.stop)


async def test_a_relay_that_stops_answering_times_out_and_is_dropped() -> None:
    """A relay silent after the mail's data: the send gives up within the transaction's
    deadline (timeout_s per reply expected), as relay trouble, and drops the connection."""
    from nexusmail.dispatch.transport import RelayUnavailableError

    handler_done = asyncio.Event()

    async def silent_after_data(reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 hi\r\n")
        in_data = False
        try:
            while line := await reader.readline():
                if in_data:
                    continue  # the data, its end included, is never answered: a hang
                if line.upper().startswith(b"DATA"):
                    writer.write(b"354 go on\r\n")
                    in_data = True
                else:
                    writer.write(b"250 ok\r\n")
        finally:
            writer.close()
            await writer.wait_closed()
            handler_done.set()

    server = await asyncio.start_server(silent_after_data, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = SmtpRelayTransport(outbound(port, timeout_s=0.2))
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("body")
    started = asyncio.get_running_loop().time()
    with pytest.raises(RelayUnavailableError, match="timed out"):
        await transport.send(message, sender=SENDER, recipients=[CUSTOMER])
    assert asyncio.get_running_loop().time() - started < 2.0
    assert transport._idle == []
    await transport.close()
    await asyncio.wait_for(handler_done.wait(), 5)  # our side closed: the relay sees EOF
    server.close()
    await server.wait_closed()


async def test_envelope_takes_bare_addresses_and_refuses_unsafe_ones(
    sink: Sink, transports: Callable[[Transport], Transport]
) -> None:
    """The relay's envelope gets the bare address of a recipient written with a display
    name or spaces around it; an address that cannot go on an SMTP command line as it is
    (a space inside, a non-ASCII local part) fails for good before any command, and the
    connection then carries the next mail."""
    from nexusmail.dispatch.transport import PermanentSendError

    transport = SmtpRelayTransport(outbound(sink.port))
    transports(transport)
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("body")
    for recipient in ("Maria Popescu <maria@example.org>", " maria@example.org "):
        await transport.send(message, sender=SENDER, recipients=[recipient])
    for unsafe in ("ma ria@example.org", "marìa@example.org"):
        with pytest.raises(PermanentSendError, match="unusable address"):
            await transport.send(message, sender=SENDER, recipients=[unsafe])
    await transport.send(message, sender=SENDER, recipients=[CUSTOMER])
    got = await sink.handler.wait_for_async(3)
    assert [m.rcpt_tos for m in got] == [[CUSTOMER], [CUSTOMER], [CUSTOMER]]
    assert all(m.mail_from == SENDER for m in got)
    assert transport.connections_opened == 1
