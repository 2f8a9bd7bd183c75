"""A mail of deeply nested HTML neither freezes intake nor the admin page (real sockets,
real parse workers)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from pathlib import Path

from admin_harness import add_operator, logged_in
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, make_settings, running_daemon

NESTING = 60_000


def mail(subject: str, html: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "cliente@example.it"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg.set_content("Vedi sotto.")
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


async def test_nested_html_stalls_neither_intake_nor_the_page(
    tmp_path: Path, relay: Controller
) -> None:
    """60,000 nested <div>s (360 KB): its 250 and an unrelated mail's sent at the same
    time come within 2 s, and the case's page answers within 1 s."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             ingest={"parse_processes": 2})
    async with running_daemon(settings) as daemon:
        nested = "<div>" * NESTING + "la caldaia" + "</div>" * NESTING
        loop = asyncio.get_running_loop()

        async def timed_send(raw: bytes) -> float:
            started = loop.time()
            code, _ = await daemon.send(raw)
            assert code == 250
            return loop.time() - started

        hostile_s, unrelated_s = await asyncio.gather(
            timed_send(mail("Nidificato", nested)), timed_send(mail("Perdita d'acqua")))
        assert hostile_s < 2.0
        assert unrelated_s < 2.0
        [(number,)] = await daemon.query(
            "SELECT number FROM interventions WHERE subject = 'Nidificato'")
        await add_operator(daemon, "anna@firm.test")
        async with logged_in(daemon, "anna@firm.test") as client:
            started = loop.time()
            page = await client.get(f"/interventions/{number}")
            page_s = loop.time() - started
        assert page.status_code == 200
        assert page_s < 1.0
        assert "la caldaia" in page.text
        [(stored,)] = await daemon.query(
            "SELECT body_html FROM messages WHERE intervention_number = ?"
            " AND kind = 'customer_mail'", number)
        assert stored.count("<div>") <= 100


async def test_a_mail_that_outruns_the_parse_deadline_is_quarantined(
    tmp_path: Path, relay: Controller
) -> None:
    """With a deadline shorter than its parse, a mail is answered 250, kept in
    quarantine with the reason, and the next mail is parsed as usual."""
    # The big mail's parse takes ~80 ms here, a small one's ~1 ms: the deadline sits
    # well between them (at 0.05 s a fast machine parsed the big one in time).
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             ingest={"parse_processes": 1, "parse_timeout_s": 0.02})
    async with running_daemon(settings) as daemon:
        big = "<p>" + "parola " * 400_000 + "</p>"
        assert (await daemon.send(mail("Enorme", big)))[0] == 250
        [(outcome, reason)] = await daemon.query("SELECT outcome, reason FROM inbound")
        assert outcome == "quarantined"
        assert "longer than 0.02 s" in reason
        assert (await daemon.send(mail("Piccola")))[0] == 250
        rows = await daemon.query("SELECT outcome FROM inbound ORDER BY id")
        assert rows == [("quarantined",), ("new_request",)]
