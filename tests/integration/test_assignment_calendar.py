"""The calendar invitation on assignment mails, over real sockets: an .ics the phone
offers to add for the case's desired period, withdrawn when the technician declines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import httpx
import icalendar
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from smtp_sink import Captured

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.tickets.cases import add_employee

LUCA = "luca@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data", relay_port=relay.port)) as running:
        now = SystemClock().now()
        await running.running.store.write(partial(add_employee, email=LUCA, name="Luca Bianchi",
                                                  language="it", now=now))
        yield running


async def open_assigned(daemon: Daemon, **period: str) -> None:
    token = await daemon.running.store.write(
        partial(create_token, name="desk", now=SystemClock().now()))
    async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1",
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        created = await api.post("/interventions", json={
            "customer_email": "verdi@example.it", "customer_name": "Condominio Verdi",
            "subject": "Caldaia in blocco", "description": "Codice E04.",
            "assignees": [LUCA], **period})
        assert created.status_code == 201, created.text


def calendar_of(mail: Captured) -> icalendar.Calendar | None:
    for part in mail.message().walk():
        if part.get_content_type() == "text/calendar":
            assert part.get_param("method") in ("REQUEST", "CANCEL")
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    return None


async def mail_to(relay: Controller, recipient: str, count: int) -> Captured:
    captured = await relay.handler.wait_for_async(count, within_s=15)
    return [m for m in captured if m.rcpt_tos == [recipient]][-1]


async def test_the_assignment_mail_invites_and_a_refusal_withdraws(
        daemon: Daemon, relay: Controller) -> None:
    """The assignment mail carries METHOD:REQUEST for the desired period as whole days
    (the last day included) with the case in the summary; the technician's refusal is
    answered with METHOD:CANCEL of the same event."""
    await open_assigned(daemon, desired_from="2026-03-05", desired_to="2026-03-06")
    assignment = await mail_to(relay, LUCA, 2)
    invite = calendar_of(assignment)
    assert invite is not None
    assert invite["METHOD"] == "REQUEST"
    [event] = invite.walk("VEVENT")
    assert event.decoded("DTSTART") == date(2026, 3, 5)
    assert event.decoded("DTEND") == date(2026, 3, 7)
    assert "[#1] Caldaia in blocco" in str(event["SUMMARY"])
    assert str(event["ORGANIZER"]) == f"mailto:{SUPPORT}"
    assert str(event["ATTENDEE"]) == f"mailto:{LUCA}"
    uid = str(event["UID"])

    original = assignment.message()
    reply = EmailMessage()
    reply["From"] = LUCA
    reply["To"] = original["Reply-To"]
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["In-Reply-To"] = original["Message-ID"]
    reply.set_content("Non posso, rifiuto: sono in ferie.")
    assert (await daemon.send(reply.as_bytes(), sender=LUCA,
                              recipients=[str(original["Reply-To"])]))[0] == 250
    echo = await mail_to(relay, LUCA, 3)
    withdrawal = calendar_of(echo)
    assert withdrawal is not None
    assert withdrawal["METHOD"] == "CANCEL"
    [cancelled] = withdrawal.walk("VEVENT")
    assert (str(cancelled["UID"]), int(cancelled["SEQUENCE"])) == (uid, 1)
    assert str(cancelled["STATUS"]) == "CANCELLED"


async def test_no_period_no_invitation(daemon: Daemon, relay: Controller) -> None:
    """A case without a desired period has nothing to put in a calendar."""
    await open_assigned(daemon)
    assert calendar_of(await mail_to(relay, LUCA, 2)) is None
