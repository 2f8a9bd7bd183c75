"""Deadlines through the real daemon with an injected clock: the deadline sweep ticks
every [sla] sweep_interval_s (0.1 s here), the reminder reaches the technician at a
real SMTP sink in their language under the assignment mail, the escalation reaches the
operators, each once across a restart, and answering the reminder acts; contracts and
the `due` filter through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from smtp_sink import Captured, CaptureHandler, start_sink
from structlog.testing import capture_logs

from nexusmail.admin.tokens import create_token
from nexusmail.clock import FakeClock
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.reply_tokens import load_reply_keys

LUCA, DISPATCH, CUSTOMER = "luca@firm.test", "dispatch@firm.test", "cliente@example.it"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # a Monday, 10:00 in Rome


@pytest.fixture
async def sink() -> AsyncIterator[tuple[CaptureHandler, int]]:
    handler = CaptureHandler()
    controller = start_sink(handler)
    try:
        yield handler, controller.port
    finally:
        await asyncio.to_thread(controller.stop)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def ticks_after(logs: list[dict[str, Any]], n: int) -> None:
    """Wait until `n` more deadline sweeps have completed."""
    target = sum(e["event"] == "sla.tick" for e in logs) + n

    async def enough() -> bool:
        return sum(e["event"] == "sla.tick" for e in logs) >= target

    await eventually(enough)


def mails_to(handler: CaptureHandler, recipient: str, subject_part: str) -> list[Captured]:
    return [m for m in handler.messages if recipient in m.rcpt_tos
            and subject_part in str(m.message()["Subject"])]


async def one_mail(handler: CaptureHandler, recipient: str, subject_part: str) -> Captured:
    async def arrived() -> bool:
        return bool(mails_to(handler, recipient, subject_part))

    await eventually(arrived)
    return mails_to(handler, recipient, subject_part)[0]


async def open_and_assign(daemon: Daemon, clock: FakeClock) -> str:
    """A customer's request by mail becomes #1, Luca (Italian) is assigned; the token."""
    store = daemon.running.store
    token: str = await store.write(lambda tx: create_token(tx, "tests", clock.now()))
    await store.write(lambda tx: add_employee(tx, email=LUCA, name="Luca Bianchi",
                                              language="it", now=clock.now()))
    request = EmailMessage()
    request["From"], request["To"] = f"Rossi Srl <{CUSTOMER}>", SUPPORT
    request["Subject"], request["Message-ID"] = "Caldaia in blocco", "<req-1@example.it>"
    request.set_content("Buongiorno, la caldaia è in blocco con codice E04.")
    assert (await daemon.send(request.as_bytes(), sender=CUSTOMER))[0] == 250
    keys = load_reply_keys(daemon.settings)
    await store.write(lambda tx: assign(tx, 1, LUCA, now=clock.now(),
                                        settings=daemon.settings, reply_keys=keys))
    return token


async def test_reminder_and_escalation_once_across_a_restart(
        tmp_path: Path, sink: tuple[CaptureHandler, int]) -> None:
    """No answer after 2 business hours: one reminder in Italian, threaded under the
    assignment mail with its signed Reply-To; after 4: one alert to the operators; a
    restart sends neither again; answering the reminder confirms the assignment."""
    mails, port = sink
    settings = make_settings(tmp_path / "data", relay_port=port,
                             mail={"operator_addresses": [DISPATCH]},
                             sla={"remind_after_hours": 2, "escalate_after_hours": 4,
                                  "response_hours": 1.5, "sweep_interval_s": 0.1})
    clock = FakeClock(START)
    with capture_logs() as logs:
        async with running_daemon(settings, clock=clock) as daemon:
            token = await open_and_assign(daemon, clock)
            assignment = (await one_mail(mails, LUCA, "Assegnazione")).message()
            await ticks_after(logs, 2)
            assert mails_to(mails, LUCA, "Promemoria") == []
            clock.advance(timedelta(hours=2))
            reminder = (await one_mail(mails, LUCA, "Promemoria")).message()
            assert reminder["In-Reply-To"] == assignment["Message-ID"]
            assert reminder["Reply-To"] == assignment["Reply-To"]
            assert "non abbiamo ancora la tua risposta" in reminder.get_body(
                ("plain",)).get_content()
            async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1", headers={
                    "Authorization": f"Bearer {token}"}) as api:
                overdue = (await api.get("/interventions", params={"due": "overdue"})).json()
                assert [i["number"] for i in overdue["items"]] == [1]
                assert overdue["items"][0]["response_due"] == "2026-03-02T10:30:00+00:00"
                assert (await api.get("/interventions", params={"due": "soon"})
                        ).status_code == 422

        async with running_daemon(settings, clock=clock) as daemon:       # restart
            await ticks_after(logs, 2)
            clock.advance(timedelta(hours=2))
            # The operators read [mail] default_language (English here).
            alert = (await one_mail(mails, DISPATCH, "No answer from")).message()
            assert "Luca Bianchi after 4 business hours" in str(alert["Subject"])
            await ticks_after(logs, 3)
            assert len(mails_to(mails, LUCA, "Promemoria")) == 1
            assert len([m for m in mails.messages if DISPATCH in m.rcpt_tos]) == 1
            assert await daemon.query("SELECT step, outcome FROM sla_steps ORDER BY id") == [
                ("remind", "sent"), ("escalate", "sent")]

            answer = EmailMessage()
            answer["From"], answer["To"] = LUCA, str(reminder["Reply-To"])
            answer["Subject"] = "Re: " + str(reminder["Subject"])
            answer["In-Reply-To"] = answer["References"] = reminder["Message-ID"]
            answer.set_content("Confermo, passo domani mattina.")
            assert (await daemon.send(answer.as_bytes(), sender=LUCA,
                                      recipients=[str(reminder["Reply-To"])]))[0] == 250
            assert await daemon.query("SELECT status FROM assignments") == [("confirmed",)]


async def test_contracts_through_the_api(tmp_path: Path,
                                         sink: tuple[CaptureHandler, int]) -> None:
    """POST and GET a customer's contracts: 201 with used and remaining hours, 409 for
    a code it has, 422 naming the field, 404 for an unknown customer; the case it
    covers takes its hours."""
    _, port = sink
    settings = make_settings(tmp_path / "data", relay_port=port,
                             sla={"sweep_interval_s": 0.1})
    clock = FakeClock(START)
    async with running_daemon(settings, clock=clock) as daemon:
        token = await open_and_assign(daemon, clock)
        [(customer_id,)] = await daemon.query("SELECT customer_id FROM interventions")
        body = {"code": "GOLD-1", "type": "maintenance", "valid_from": "2026-01-01",
                "valid_to": "2026-12-31", "response_hours": 4, "resolution_hours": 16.5,
                "prepaid_hours": 20, "notes": "Caldaie e bruciatori"}
        async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1", headers={
                "Authorization": f"Bearer {token}"}) as api:
            url = f"/customers/{customer_id}/contracts"
            created = await api.post(url, json=body)
            assert created.status_code == 201, created.text
            assert {k: created.json()[k] for k in ("code", "used_hours", "remaining_hours",
                                                   "prepaid_hours")} == {
                "code": "GOLD-1", "used_hours": 0, "remaining_hours": 20, "prepaid_hours": 20}
            assert (await api.post(url, json=body)).status_code == 409
            bad = await api.post(url, json={**body, "code": "X", "valid_to": "2025-01-01"})
            assert bad.status_code == 422
            assert "valid_to" in bad.json()["error"]
            assert (await api.get("/customers/999/contracts")).status_code == 404
            listed = (await api.get(url)).json()["items"]
            assert [c["code"] for c in listed] == ["GOLD-1"]

            async def covered() -> bool:
                detail = (await api.get("/interventions/1")).json()
                # 16.5 business hours from Monday 10:00 in Rome (08:30-17:30): Tuesday
                # at 17:30.
                return bool(detail["resolution_due"] == "2026-03-03T16:30:00+00:00")

            await eventually(covered)
