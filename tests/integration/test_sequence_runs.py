"""Action sequences running through the real daemon with an injected clock: started by
hand over the API and by a request type, each step an assignment mailed to a real SMTP
sink with its action, hours and notes, the next step mailed after its postpone days
(business days) once, across a restart, and the run driven by replies to the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from smtp_sink import Captured, CaptureHandler, start_sink
from structlog.testing import capture_logs

from nexusmail.admin.tokens import create_token
from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.tickets.cases import add_employee

LUCA, MARCO, ANA = "luca@firm.test", "marco@firm.test", "ana@firm.test"
DISPATCH, CUSTOMER = "dispatch@firm.test", "cliente@example.it"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # a Monday, 10:00 in Rome

BOILER = {
    "code": "MAN-CALDAIA", "description": "Annual boiler maintenance",
    "notes": "Internal: ask for the last report",
    "steps": [
        {"team": "Caldaie", "action": "call", "expected_hours": 0.25,
         "notes": "Agree a day with the customer", "postpone_days": 2},
        {"employee_email": LUCA, "action": "visit", "expected_hours": 2,
         "notes": "Bring the flue gas analyser", "postpone_days": 0},
        {"employee_email": LUCA, "action": "quote", "expected_hours": 0.5,
         "notes": "Quote the new flue"},
    ],
}


@pytest.fixture
async def sink_at() -> AsyncIterator[tuple[CaptureHandler, int]]:
    handler = CaptureHandler()
    controller = start_sink(handler)
    try:
        yield handler, controller.port
    finally:
        await asyncio.to_thread(controller.stop)


def settings_for(tmp_path: Path, port: int) -> Settings:
    return make_settings(tmp_path / "data", relay_port=port,
                         mail={"operator_addresses": [DISPATCH]},
                         sla={"sweep_interval_s": 0.1})


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 15.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def ticks_after(logs: list[dict[str, Any]], n: int) -> None:
    """Wait until `n` more sequence sweeps have completed."""
    target = sum(e["event"] == "sequence.tick" for e in logs) + n

    async def enough() -> bool:
        return sum(e["event"] == "sequence.tick" for e in logs) >= target

    await eventually(enough)


def mails_to(sink: CaptureHandler, recipient: str, text: str) -> list[Captured]:
    """Mails to `recipient` whose text part says `text`."""
    return [m for m in sink.messages if m.rcpt_tos == [recipient]
            and text in m.message().get_body(("plain",)).get_content()]


async def one_mail(sink: CaptureHandler, recipient: str, text: str) -> EmailMessage:
    async def arrived() -> bool:
        return bool(mails_to(sink, recipient, text))

    await eventually(arrived)
    [mail] = mails_to(sink, recipient, text)
    return mail.message()


async def reply(daemon: Daemon, mail: EmailMessage, sender: str, text: str) -> None:
    """The technician answers `mail` from their own address, to its signed Reply-To."""
    answer = EmailMessage()
    answer["From"], answer["To"] = sender, str(mail["Reply-To"])
    answer["Subject"] = "Re: " + str(mail["Subject"])
    answer["In-Reply-To"] = answer["References"] = mail["Message-ID"]
    answer.set_content(text)
    code, _ = await daemon.send(answer.as_bytes(), sender=sender,
                                recipients=[str(mail["Reply-To"])])
    assert code == 250


class Desk:
    """The API as the operators' desk uses it, with its token."""

    def __init__(self, daemon: Daemon, token: str) -> None:
        self.daemon = daemon
        self.token = token

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.daemon.web_url + "/api/v1") as client:
            return await client.request(method, path, headers={
                "Authorization": f"Bearer {self.token}"}, **kwargs)

    async def sequence(self, number: int = 1) -> dict[str, Any]:
        detail = await self.call("GET", f"/interventions/{number}")
        assert detail.status_code == 200, detail.text
        sequence: dict[str, Any] = detail.json()["sequence"]
        return sequence


async def set_up(daemon: Daemon, clock: FakeClock) -> Desk:
    """Luca (Italian), and team Caldaie of Marco (English) and Ana (Romanian); the
    sequence MAN-CALDAIA; a customer's request by mail as #1."""
    store = daemon.running.store
    token: str = await store.write(partial(create_token, name="tests", now=clock.now()))
    for email, name, language in [(LUCA, "Luca Bianchi", "it"), (MARCO, "Marco Neri", "en"),
                                  (ANA, "Ana Ionescu", "ro")]:
        await store.write(partial(add_employee, email=email, name=name, language=language,
                                  now=clock.now()))
    desk = Desk(daemon, token)
    team = await desk.call("POST", "/teams", json={"name": "Caldaie", "members": [MARCO, ANA]})
    assert team.status_code == 201, team.text
    created = await desk.call("POST", "/sequences", json=BOILER)
    assert created.status_code == 201, created.text
    assert [s["needs_report"] for s in created.json()["steps"]] == [False, True, False]
    request = EmailMessage()
    request["From"], request["To"] = f"Rossi Srl <{CUSTOMER}>", SUPPORT
    request["Subject"], request["Message-ID"] = "Manutenzione caldaia", "<req-1@example.it>"
    request.set_content("Buongiorno, vorremmo la manutenzione annuale della caldaia.")
    assert (await daemon.send(request.as_bytes(), sender=CUSTOMER))[0] == 250
    return desk


async def test_a_three_step_sequence_driven_by_replies_to_the_end(
        tmp_path: Path, sink_at: tuple[CaptureHandler, int]) -> None:
    """Started by hand: step 1 goes to the team in each member's language with the
    step's action, hours and notes; Marco's confirmation finishes it (a call needs no
    report) and schedules step 2 two business days later; a restart mails it once, on
    Wednesday morning; Luca's done report finishes it and step 3 is mailed to him again
    at once; his confirmation ends the run; the thread tells each move."""
    sink, port = sink_at
    settings = settings_for(tmp_path, port)
    clock = FakeClock(START)
    with capture_logs() as logs:
        async with running_daemon(settings, clock=clock) as daemon:
            desk = await set_up(daemon, clock)
            started = await desk.call("POST", "/interventions/1/sequence",
                                      json={"code": "MAN-CALDAIA"})
            assert started.status_code == 201, started.text
            run = started.json()
            assert (run["code"], run["state"], run["current_step"]) == (
                "MAN-CALDAIA", "running", 1)
            assert [(s["number"], s["action"], s["status"], s["due"]) for s in run["steps"]] == [
                (1, "call", "assigned", "2026-03-02"), (2, "visit", "planned", None),
                (3, "quote", "planned", None)]
            again = await desk.call("POST", "/interventions/1/sequence",
                                    json={"code": "MAN-CALDAIA"})
            assert again.status_code == 409

            to_ana = await one_mail(sink, ANA, "SECVENȚA MAN-CALDAIA, PASUL 1 DIN 3")
            text = to_ana.get_body(("plain",)).get_content()
            assert "Acțiune: telefon" in text
            assert "Ore estimate: 0.25" in text
            assert "Note: Agree a day with the customer" in text
            to_marco = await one_mail(sink, MARCO, "SEQUENCE MAN-CALDAIA, STEP 1 OF 3")
            assert "Confirming is enough" in to_marco.get_body(("plain",)).get_content()

            await reply(daemon, to_marco, MARCO, "Confirmed, I will call them today.")

            async def step_two_scheduled() -> bool:
                steps = (await desk.sequence())["steps"]
                return bool(steps[1]["status"] == "scheduled")

            await eventually(step_two_scheduled)
            run = await desk.sequence()
            assert [(s["status"], s["due"]) for s in run["steps"]] == [
                ("done", "2026-03-02"), ("scheduled", "2026-03-04"), ("planned", None)]
            await one_mail(sink, ANA, "Marco Neri")       # taken by a colleague
            await ticks_after(logs, 3)
            assert mails_to(sink, LUCA, "PASSO 2 DI 3") == []

        async with running_daemon(settings, clock=clock) as daemon:       # restart
            desk = Desk(daemon, desk.token)
            clock.advance(timedelta(days=1, hours=22))    # Wednesday 07:00 UTC, 08:00 Rome
            await ticks_after(logs, 3)
            assert mails_to(sink, LUCA, "PASSO 2 DI 3") == []
            clock.advance(timedelta(minutes=31))          # 08:31 in Rome: working time
            visit = await one_mail(sink, LUCA, "SEQUENZA MAN-CALDAIA, PASSO 2 DI 3")
            text = visit.get_body(("plain",)).get_content()
            assert "Azione: visita" in text
            assert "Ore previste: 2" in text
            assert "Note: Bring the flue gas analyser" in text
            assert "rispondi FATTO con le ore lavorate" in text

            await reply(daemon, visit, LUCA, "Confermo, passo in mattinata.")

            async def confirmed() -> bool:
                return bool((await desk.sequence())["steps"][1]["status"] == "confirmed")

            await eventually(confirmed)
            await reply(daemon, visit, LUCA, "Fatto, 2 ore di lavoro.")
            quote = await one_mail(sink, LUCA, "SEQUENZA MAN-CALDAIA, PASSO 3 DI 3")
            assert quote["Message-ID"] != visit["Message-ID"]
            assert await daemon.query("SELECT status FROM interventions") == [("open",)]

            await reply(daemon, quote, LUCA, "Confermo, passo in mattinata.")

            async def finished() -> bool:
                return bool((await desk.sequence())["state"] == "done")

            await eventually(finished)
            run = await desk.sequence()
            assert run["current_step"] is None
            assert [s["status"] for s in run["steps"]] == ["done", "done", "done"]
            await ticks_after(logs, 3)
            assert len(mails_to(sink, LUCA, "PASSO 2 DI 3")) == 1
            assert len(mails_to(sink, LUCA, "PASSO 3 DI 3")) == 1
            notes = [body for (body,) in await daemon.query(
                "SELECT body_text FROM messages WHERE body_text LIKE 'Sequence %' ORDER BY id")]
            assert notes == [
                "Sequence MAN-CALDAIA started by api:tests: 3 steps.",
                "Sequence MAN-CALDAIA, step 1 (call) mailed to team Caldaie.",
                "Sequence MAN-CALDAIA, step 1 (call) confirmed by Marco Neri.",
                "Sequence MAN-CALDAIA, step 2 (visit) is due on 2026-03-04.",
                "Sequence MAN-CALDAIA, step 2 (visit) mailed to luca@firm.test.",
                "Sequence MAN-CALDAIA, step 2 (visit) reported done by Luca Bianchi.",
                "Sequence MAN-CALDAIA, step 3 (quote) mailed to luca@firm.test.",
                "Sequence MAN-CALDAIA, step 3 (quote) confirmed by Luca Bianchi.",
                "Sequence MAN-CALDAIA finished: every step is done.",
            ]
            hours = await daemon.query("SELECT work_minutes FROM activities"
                                       " WHERE superseded_by IS NULL")
            assert hours == [(120,)]


async def test_a_request_type_starts_its_sequence(tmp_path: Path,
                                                  sink_at: tuple[CaptureHandler, int]
                                                  ) -> None:
    """A sequence with a trigger request type starts on a new intervention of that type
    (entered over the API): its step 1 reaches the employee by the next sweep."""
    sink, port = sink_at
    settings = settings_for(tmp_path, port)
    clock = FakeClock(START)
    async with running_daemon(settings, clock=clock) as daemon:
        desk = await set_up(daemon, clock)
        types = await desk.call("GET", "/request-types")
        assert types.status_code == 200, types.text
        kind = types.json()["items"][0]["code"]
        check = {"code": "CHECK-UP", "trigger_request_type": kind,
                 "steps": [{"employee_email": LUCA, "action": "check",
                            "notes": "Look at the pressure"}]}
        assert (await desk.call("POST", "/sequences", json=check)).status_code == 201
        opened = await desk.call("POST", "/interventions", json={
            "customer_email": CUSTOMER, "subject": "Controllo", "description": "Pressione",
            "request_type": kind})
        assert opened.status_code == 201, opened.text
        number = opened.json()["number"]
        mail = await one_mail(sink, LUCA, "SEQUENZA CHECK-UP, PASSO 1 DI 1")
        assert f"[#{number}]" in str(mail["Subject"])
        run = await desk.sequence(number)
        assert (run["code"], run["started_by"], run["steps"][0]["status"]) == (
            "CHECK-UP", f"request type {kind}", "assigned")


async def customer_request(daemon: Daemon, subject: str, n: int) -> None:
    request = EmailMessage()
    request["From"], request["To"] = f"Rossi Srl <{CUSTOMER}>", SUPPORT
    request["Subject"], request["Message-ID"] = subject, f"<req-{n}@example.it>"
    request.set_content("Buongiorno, una richiesta.")
    assert (await daemon.send(request.as_bytes(), sender=CUSTOMER))[0] == 250


async def test_a_step_nobody_can_take_waits_and_a_closed_case_stops_its_sequence(
        tmp_path: Path, sink_at: tuple[CaptureHandler, int]) -> None:
    """A postponed step whose employee was retired meanwhile is blocked, with the reason
    on the thread and in the JSON, and no mail; on a case closed meanwhile the step is
    cancelled and the run stopped, and no mail goes out either. The blocked step, and
    then the same step rejected, are mailed again when the operator asks; a step still
    waiting for its answer is not (409)."""
    sink, port = sink_at
    settings = settings_for(tmp_path, port)
    clock = FakeClock(START)
    with capture_logs() as logs:
        async with running_daemon(settings, clock=clock) as daemon:
            desk = await set_up(daemon, clock)
            short = {"code": "TWO", "steps": [
                {"employee_email": MARCO, "action": "call", "postpone_days": 1},
                {"employee_email": LUCA, "action": "visit"}]}
            assert (await desk.call("POST", "/sequences", json=short)).status_code == 201
            await customer_request(daemon, "Secondo caso", 2)
            for number in (1, 2):
                started = await desk.call("POST", f"/interventions/{number}/sequence",
                                          json={"code": "TWO"})
                assert started.status_code == 201, started.text
            for number in (1, 2):
                mail = await one_mail_on(sink, MARCO, "STEP 1 OF 2", number)
                await reply(daemon, mail, MARCO, "Confirmed.")

            async def both_scheduled() -> bool:
                runs = [await desk.sequence(n) for n in (1, 2)]
                return all(r["steps"][1]["status"] == "scheduled" for r in runs)

            await eventually(both_scheduled)
            retired = await desk.call("PATCH", f"/employees/{LUCA}", json={"active": False})
            assert retired.status_code == 200, retired.text
            closed = await desk.call("POST", "/interventions/2/close", json={"note": "Done"})
            assert closed.status_code == 200, closed.text
            assert (await desk.sequence(2))["state"] == "stopped"   # shown at once
            clock.advance(timedelta(days=1))              # Tuesday 10:00 in Rome

            async def moved() -> bool:
                runs = [await desk.sequence(n) for n in (1, 2)]
                return [r["steps"][1]["status"] for r in runs] == ["blocked", "cancelled"]

            await eventually(moved)
            first, second = await desk.sequence(1), await desk.sequence(2)
            assert first["state"] == "running"
            assert first["steps"][1]["problem"] == "its employee is not active"
            assert second["state"] == "stopped"
            await ticks_after(logs, 3)
            assert mails_to(sink, LUCA, "PASSO 2 DI 2") == []
            notes = [body for (body,) in await daemon.query(
                "SELECT body_text FROM messages WHERE body_text LIKE 'Sequence TWO%'"
                " AND (body_text LIKE '%could not%' OR body_text LIKE '%stopped%')"
                " ORDER BY id")]
            assert notes == [
                "Sequence TWO, step 2 (visit) could not be mailed: its employee is not"
                " active.",
                "Sequence TWO stopped at step 2: the intervention is closed."]

            # Luca is back: the operator has the blocked step mailed again; he says no,
            # and it is mailed to him once more; a step waiting for an answer is not.
            back = await desk.call("PATCH", f"/employees/{LUCA}", json={"active": True})
            assert back.status_code == 200, back.text
            again = await desk.call("POST", "/interventions/1/sequence/again")
            assert again.status_code == 200, again.text
            assert again.json()["steps"][1]["status"] == "assigned"
            visit = await one_mail_on(sink, LUCA, "PASSO 2 DI 2", 1)
            await reply(daemon, visit, LUCA, "Rifiuto, sono in ferie.")

            async def rejected() -> bool:
                return bool((await desk.sequence(1))["steps"][1]["status"] == "rejected")

            await eventually(rejected)
            assert (await desk.call("POST", "/interventions/1/sequence/again")
                    ).status_code == 200

            async def mailed_twice() -> bool:
                return len(mails_to(sink, LUCA, "PASSO 2 DI 2")) == 2

            await eventually(mailed_twice)
            assert (await desk.sequence(1))["steps"][1]["status"] == "assigned"
            assert (await desk.call("POST", "/interventions/1/sequence/again")
                    ).status_code == 409
            assert (await desk.call("POST", "/interventions/2/sequence/again")
                    ).status_code == 404


async def one_mail_on(sink: CaptureHandler, recipient: str, text: str,
                      number: int) -> EmailMessage:
    async def arrived() -> bool:
        return any(f"[#{number}]" in str(m.message()["Subject"])
                   for m in mails_to(sink, recipient, text))

    await eventually(arrived)
    return next(m.message() for m in mails_to(sink, recipient, text)
                if f"[#{number}]" in str(m.message()["Subject"]))
