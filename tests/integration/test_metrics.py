"""Monitoring over real sockets with the real daemon: /metrics, /api/v1/ready, /health."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from prometheus_client.parser import text_string_to_metric_families
from smtp_sink import CaptureHandler
from store_faults import writes_refused

from nexusmail.admin.tokens import create_token
from nexusmail.clock import FakeClock, SystemClock
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.reply_tokens import load_reply_keys

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
LUCA = "luca@firm.test"


def mail(subject: str = "Caldaia guasta", body: str = "La caldaia non parte.",
         *, sender: str = "mario.rossi@example.it",
         extra: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = email.utils.make_msgid(domain="example.it")
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data", relay_port=relay.port)) as d:
        yield d


async def scrape(daemon: Daemon, token: str | None = None) -> Samples:
    """GET /metrics, parsed by prometheus_client's own parser: {(name, labels): value}."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{daemon.web_url}/metrics", headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def ready(daemon: Daemon) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{daemon.web_url}/api/v1/ready")


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


async def test_metrics_count_what_happened_to_each_mail(daemon: Daemon,
                                                        sink: CaptureHandler) -> None:
    """New request, noise, refused RCPT and a full-disk 451 are counted; acks and latency too."""
    assert (await daemon.send(mail()))[0] == 250
    assert (await daemon.send(mail("Out of office", "Away until Monday.",
                                   extra={"Auto-Submitted": "auto-replied"})))[0] == 250
    assert (await daemon.send(mail(), recipients=["nobody@elsewhere.test"]))[0] == 550
    [ack] = await sink.wait_for_async(1)
    assert ack.rcpt_tos == ["mario.rossi@example.it"]

    async def sent() -> bool:
        return value(await scrape(daemon), "nexusmail_outbox_sent_total") == 1

    # The sent mark commits just after the relay's answer; it must be in before writes
    # are refused below, or the mark fails with them and the ack waits for a retry.
    await eventually(sent)
    async with writes_refused(daemon.running.store):
        # Bigger than any free page the database may hold: it must grow, and cannot.
        code, _ = await daemon.send(mail("Foto", "x" * 400_000, sender="anna@example.it"))
        assert code == 451
    samples = await scrape(daemon)
    for outcome, count in [("new_request", 1), ("noise", 1), ("recipient_refused", 1),
                           ("temporary_failure", 1), ("duplicate", 0)]:
        got = value(samples, "nexusmail_mails_total", source="smtp", outcome=outcome)
        assert got == count, outcome
    assert value(samples, "nexusmail_ingest_duration_seconds_count", source="smtp") == 2
    assert value(samples, "nexusmail_ingest_duration_seconds_sum", source="smtp") > 0
    assert value(samples, "nexusmail_ingest_duration_seconds_bucket", source="smtp",
                 le="+Inf") == 2
    assert value(samples, "nexusmail_outbox_pending") == 0
    assert value(samples, "nexusmail_outbox_oldest_pending_age_seconds") == 0
    assert value(samples, "nexusmail_scheduler_last_tick_timestamp_seconds") > 0
    assert value(samples, "nexusmail_info", version="0.1.0") == 1


async def test_outbox_backlog_is_read_at_scrape_time(tmp_path: Path) -> None:
    """With the relay down, the acknowledgement waits: pending 1, an age, retries counted."""
    settings = make_settings(tmp_path / "data", relay_port=1,  # nothing listens on port 1
                             outbound={"retry_base_s": 0.1, "retry_max_s": 0.2})
    async with running_daemon(settings) as daemon:
        assert (await daemon.send(mail()))[0] == 250

        async def retried() -> bool:
            return value(await scrape(daemon), "nexusmail_outbox_retries_total") >= 1

        await eventually(retried)
        await asyncio.sleep(1.1)  # created_at has whole seconds
        samples = await scrape(daemon)
        assert value(samples, "nexusmail_outbox_pending") == 1
        assert value(samples, "nexusmail_outbox_oldest_pending_age_seconds") >= 1
        assert value(samples, "nexusmail_outbox_sent_total") == 0
        outbox = (await ready(daemon)).json()["outbox"]
        assert outbox["pending"] == 1
        assert outbox["oldest_pending_age_s"] >= 1


@pytest.mark.sqlite_only(reason="the room left in the database file is SQLite's figure")
async def test_ready_names_a_full_database_and_recovers(daemon: Daemon) -> None:
    """/ready: 200 with every part, 503 naming storage while full, 200 after; /health plain."""
    reply = await ready(daemon)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "ready"
    assert body["reasons"] == []
    assert body["storage"]["ok"] is True
    assert body["smtp"] == {"ok": True, "listening": True}
    assert body["imap"] == {"ok": True, "accounts": {}}
    assert body["outbox"] == {"ok": True, "pending": 0, "oldest_pending_age_s": None}
    assert body["scheduler"]["ok"] is True
    assert body["scheduler"]["overdue"] is False
    assert body["scheduler"]["last_tick"] is not None

    async with writes_refused(daemon.running.store):
        reply = await ready(daemon)
        assert reply.status_code == 503
        body = reply.json()
        assert body["status"] == "not ready"
        [reason] = body["reasons"]
        assert reason.startswith("storage: database full")
        assert "max_message_bytes" in reason
    assert (await ready(daemon)).status_code == 200

    async with httpx.AsyncClient() as http:
        health = await http.get(f"{daemon.web_url}/api/v1/health")
    assert health.status_code == 200
    shown = health.json()
    assert {k: shown[k] for k in ("status", "imap")} == {"status": "ok", "imap": {}}
    assert [d["id"] for d in shown["cluster"]["daemons"]] == [shown["cluster"]["self"]]


async def test_ready_says_when_the_scheduler_is_overdue(tmp_path: Path) -> None:
    """No tick for more than three [scheduler] intervals: 503 naming the scheduler."""
    clock = FakeClock(datetime.now(UTC))
    settings = make_settings(tmp_path / "data", scheduler={"interval_s": 60})
    async with running_daemon(settings, clock=clock) as daemon:
        assert (await ready(daemon)).status_code == 200
        clock.advance(timedelta(minutes=10))  # the next real tick is a minute away
        reply = await ready(daemon)
        assert reply.status_code == 503
        assert reply.json()["scheduler"]["overdue"] is True
        [reason] = reply.json()["reasons"]
        assert reason.startswith("scheduler: no tick completed for 600 s")


async def test_metrics_need_the_token_when_not_public(tmp_path: Path) -> None:
    """[web] metrics_public = false: /metrics answers 401 without a valid bearer token."""
    settings = make_settings(tmp_path / "data", web={"metrics_public": False})
    async with running_daemon(settings) as daemon:
        token = await daemon.running.store.write(
            partial(create_token, name="prometheus", now=SystemClock().now()))
        async with httpx.AsyncClient() as http:
            anonymous = await http.get(f"{daemon.web_url}/metrics")
            wrong = await http.get(f"{daemon.web_url}/metrics",
                                   headers={"Authorization": "Bearer nope"})
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert wrong.status_code == 401
        assert value(await scrape(daemon, token), "nexusmail_outbox_sent_total") == 0
        assert (await ready(daemon)).status_code == 200  # readiness stays open


async def test_assignment_replies_are_counted_by_verdict(daemon: Daemon,
                                                         sink: CaptureHandler) -> None:
    """The employee's confirmation counts as acted; the same words from a stranger do not."""
    store = daemon.running.store
    now = SystemClock().now()
    await store.write(partial(add_employee, email=LUCA, name="Luca", language="it", now=now))
    assert (await daemon.send(mail()))[0] == 250
    await store.write(partial(assign, number=1, employee_email=LUCA, now=now,
                              settings=daemon.settings,
                              reply_keys=load_reply_keys(daemon.settings)))
    captured = await sink.wait_for_async(2)
    [assignment] = [m.message() for m in captured if m.rcpt_tos == [LUCA]]

    def reply(sender: str) -> bytes:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = str(assignment["Reply-To"])
        msg["Subject"] = "Re: " + str(assignment["Subject"])
        msg["In-Reply-To"] = msg["References"] = str(assignment["Message-ID"])
        msg["Message-ID"] = email.utils.make_msgid(domain="firm.test")
        msg.set_content("Confermo, passo domani.")
        return msg.as_bytes()

    to = [str(assignment["Reply-To"].addresses[0].addr_spec)]
    assert (await daemon.send(reply(LUCA), sender=LUCA, recipients=to))[0] == 250
    assert (await daemon.send(reply("other@firm.test"), sender="other@firm.test",
                              recipients=to))[0] == 250
    samples = await scrape(daemon)
    assert value(samples, "nexusmail_assignment_replies_total",
                 verdict="confirmed", acted="true") == 1
    assert value(samples, "nexusmail_assignment_replies_total",
                 verdict="confirmed", acted="false") == 1
    assert value(samples, "nexusmail_mails_total", source="smtp",
                 outcome="technician_reply") == 2


async def test_scheduler_openings_are_counted_with_the_late_ones(tmp_path: Path,
                                                                 relay: Controller) -> None:
    """A schedule opens on time, then after 63 days of downtime two openings come late."""
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             scheduler={"interval_s": 0.1})
    async with running_daemon(settings, clock=clock) as daemon:
        token = await daemon.running.store.write(
            partial(create_token, name="tests", now=clock.now()))
        async with httpx.AsyncClient(base_url=daemon.web_url) as http:
            created = await http.post("/api/v1/schedules", headers={
                "Authorization": f"Bearer {token}"}, json={
                "customer_email": "condominio@example.it", "subject": "Manutenzione",
                "interval": "monthly", "first_date": "2026-03-05", "lead_days": 3})
        assert created.status_code == 201, created.text

        async def opened(count: int) -> bool:
            return value(await scrape(daemon), "nexusmail_scheduler_opened_total") == count

        await eventually(partial(opened, 1))
        clock.advance(timedelta(days=63))
        await eventually(partial(opened, 3))
        samples = await scrape(daemon)
        assert value(samples, "nexusmail_scheduler_late_total") == 2
        assert value(samples, "nexusmail_scheduler_failed_total") == 0
