"""End to end over real sockets: technicians report the work done by replying to their
assignment mail; activities, echoes, resolution and the customer's closing mail."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from postgres_server import PostgresCluster
from smtp_sink import Captured, CaptureHandler

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.reply_tokens import load_reply_keys

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + bytes(range(256)) * 8
LUCA, ION, CUSTOMER, DISPATCH = ("luca@firm.test", "ion@firm.test", "cliente@example.it",
                                 "dispatch@firm.test")
REQUEST_ID = "richiesta-1@example.it"


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"operator_addresses": [DISPATCH]},
                             reports={"customer_closing_mail": True})
    async with running_daemon(settings) as running:
        yield running


class Job:
    """A customer's request by mail, two technicians assigned, their mails captured."""

    def __init__(self, daemon: Daemon, sink: CaptureHandler) -> None:
        self.daemon = daemon
        self.sink = sink
        self.token = ""
        self.assignment_mails: dict[str, Captured] = {}

    async def open(self) -> None:
        store = self.daemon.running.store
        now = SystemClock().now()
        self.token = await store.write(partial(create_token, name="test", now=now))
        for email, name, language in [(LUCA, "Luca Bianchi", "it"), (ION, "Ion Popescu", "ro")]:
            await store.write(partial(add_employee, email=email, name=name, language=language,
                                      now=now))
        request = EmailMessage()
        request["From"], request["To"] = f"Rossi Srl <{CUSTOMER}>", SUPPORT
        request["Subject"], request["Message-ID"] = "Caldaia in blocco", f"<{REQUEST_ID}>"
        request.set_content("Buongiorno, la caldaia è in blocco con codice E04. Grazie")
        assert (await self.daemon.send(request.as_bytes(), sender=CUSTOMER,
                                       recipients=[SUPPORT]))[0] == 250
        keys = load_reply_keys(self.daemon.settings)
        for email in (LUCA, ION):
            await store.write(partial(assign, number=1, employee_email=email, now=now,
                                      settings=self.daemon.settings, reply_keys=keys))
        for email in (LUCA, ION):
            self.assignment_mails[email] = await self.mail_to(email, "[#1]")

    async def mail_to(self, recipient: str, subject_part: str, *, after: int = 0,
                      within_s: float = 15) -> Captured:
        """The first mail to `recipient` whose subject has `subject_part`, among those the
        sink got after the first `after`."""
        async with asyncio.timeout(within_s):
            while True:
                for mail in self.sink.messages[after:]:
                    if (recipient in mail.rcpt_tos
                            and subject_part in str(mail.message()["Subject"])):
                        return mail
                await asyncio.sleep(0.05)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.daemon.web_url + "/api/v1") as client:
            return await client.request(method, path, headers={
                "Authorization": f"Bearer {self.token}"}, **kwargs)

    async def reply(self, employee: str, body: str, *, sender: str | None = None,
                    pdf: bool = False) -> int:
        """`employee` answers their assignment mail (from `sender`, if another)."""
        original = self.assignment_mails[employee].message()
        msg = EmailMessage()
        msg["From"] = sender or employee
        msg["To"] = original["Reply-To"]
        msg["Subject"] = "Re: " + str(original["Subject"])
        msg["In-Reply-To"] = msg["References"] = original["Message-ID"]
        quoted = "\n".join("> " + line for line in original.get_body(
            ("plain",)).get_content().splitlines())
        msg.set_content(f"{body}\n\nIl giorno lun 2 mar 2026 alle ore 09:00 Firm <{SUPPORT}>"
                        f" ha scritto:\n{quoted}\n")
        if pdf:
            msg.add_attachment(PDF, maintype="application", subtype="pdf",
                               filename="rapportino.pdf")
        code, _ = await self.daemon.send(msg.as_bytes(), sender=sender or employee,
                                         recipients=[str(original["Reply-To"])])
        return code

    async def intervention(self) -> dict[str, Any]:
        response = await self.api("GET", "/interventions/1")
        assert response.status_code == 200
        data: dict[str, Any] = response.json()
        return data

    async def assignment_status(self) -> dict[str, str]:
        rows = await self.daemon.query("SELECT e.email, a.status FROM assignments a"
                                       " JOIN employees e ON e.id = a.employee_id")
        return {row[0]: row[1] for row in rows}


@pytest.fixture
async def job(daemon: Daemon, relay: Controller) -> Job:
    opened = Job(daemon, relay.handler)
    await opened.open()
    return opened


async def test_reports_become_activities_and_resolve_the_case(job: Job) -> None:
    """Confirm, report "fatto 2 ore e mezza" with a PDF: an activity of 2.5 h with the PDF,
    the echo in Italian; the case resolves only when the second technician reports too,
    the operators are told and the customer's closing mail answers their request."""
    assert await job.reply(LUCA, "Confermo") == 250
    assert await job.reply(ION, "Confirm, vin joi") == 250
    # The confirmations' echoes are sent after their 250s: wait for them, so the next
    # "Registrato" to Luca is the report's.
    await job.mail_to(LUCA, "confermato")
    await job.mail_to(ION, "confirmat")
    before = len(job.sink.messages)
    assert await job.reply(LUCA, "fatto 2 ore e mezza, sostituita la scheda", pdf=True) == 250

    # Matched by its hours: the echo of the confirmation may arrive in between.
    echo = (await job.mail_to(LUCA, "Registrato: 2,5 h", after=before)).message()
    assert "Registrato: 2,5 h su #1" in echo.get_body(("plain",)).get_content()
    assert (await job.assignment_status()) == {LUCA: "done", ION: "confirmed"}
    data = await job.intervention()
    assert data["status"] == "open"
    [activity] = data["activities"]
    assert activity["employee_email"] == LUCA
    assert activity["kind"] == "work"
    assert activity["hours"] == 2.5
    assert activity["travel_hours"] is None
    [pdf] = activity["attachments"]
    assert pdf["sha256"] == hashlib.sha256(PDF).hexdigest()
    report = [m for m in data["messages"] if m["kind"] == "technician_reply"][-1]
    assert (report["verdict"], report["hours"], report["travel_hours"]) == ("done", 2.5, None)

    before = len(job.sink.messages)
    assert await job.reply(ION, "Gata, o oră și 20 de minute + 40 min deplasare") == 250
    await job.mail_to(ION, "Înregistrat: 1 h 20 min", after=before)
    notice = await job.mail_to(DISPATCH, "Resolved", after=before)
    assert "[#1]" in str(notice.message()["Subject"])
    closing = (await job.mail_to(CUSTOMER, "completato", after=before)).message()
    assert closing["In-Reply-To"] == f"<{REQUEST_ID}>"
    closing_text = closing.get_body(("plain",)).get_content()
    assert "Tempo di lavoro: 3 h 50 min" in closing_text
    assert "Luca Bianchi: 2 ore e mezza, sostituita la scheda" in closing_text
    data = await job.intervention()
    assert data["status"] == "resolved"
    assert "resolved" in data["needs_attention"]
    ion_activity = data["activities"][1]
    assert ion_activity["hours"] == pytest.approx(4 / 3)
    assert ion_activity["travel_hours"] == pytest.approx(2 / 3)

    closed = await job.api("POST", "/interventions/1/close", json={})
    assert closed.status_code == 200, closed.text
    assert (await job.intervention())["status"] == "closed"


async def test_a_case_of_a_request_type_closes_with_that_types_mail(
    tmp_path: Path, relay: Controller
) -> None:
    """A case of a listed request type gets the firm's closing mail for that type (its
    own in templates_dir, Italian, no subject of its own so the general one), threaded
    on the customer's request, with the reports and the total hours."""
    firm = tmp_path / "firm"
    folder = firm / "mail" / "it" / "closing"
    folder.mkdir(parents=True)
    (folder / "riparazione.txt.j2").write_text(
        "{{ request_type_name }} conclusa (#{{ number }}).\n"
        "{% for report in reports %}{{ report.text }}\n{% endfor %}Ore: {{ total_hours }}\n",
        "utf-8")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"operator_addresses": [DISPATCH], "templates_dir": str(firm)},
                             reports={"customer_closing_mail": True})
    async with running_daemon(settings) as daemon:
        job = Job(daemon, relay.handler)
        await job.open()
        created = await job.api("POST", "/request-types", json={
            "code": "riparazione", "names": {"it": "Riparazione guasti"}})
        assert created.status_code == 201, created.text
        patched = await job.api("PATCH", "/interventions/1", json={"request_type": "riparazione"})
        assert patched.status_code == 200, patched.text
        assert await job.reply(LUCA, "Confermo") == 250
        assert await job.reply(ION, "Confirm") == 250
        before = len(job.sink.messages)
        assert await job.reply(LUCA, "Fatto, 2 ore, sostituita la scheda") == 250
        assert await job.reply(ION, "Gata, o oră") == 250
        closing = (await job.mail_to(CUSTOMER, "completato", after=before)).message()
        assert str(closing["Subject"]) == "Re: [#1] Caldaia in blocco – completato"
        assert closing["In-Reply-To"] == f"<{REQUEST_ID}>"
        assert closing.get_body(("plain",)).get_content().splitlines() == [
            "Riparazione guasti conclusa (#1).", "2 ore, sostituita la scheda", "o oră",
            "Ore: 3 h"]


async def test_a_not_done_report_keeps_the_assignment_and_alerts_operators(job: Job) -> None:
    """"Non ho finito, manca il pezzo" leaves the assignment confirmed, flags the case
    and mails the operators the reason."""
    assert await job.reply(LUCA, "Confermo") == 250
    before = len(job.sink.messages)
    assert await job.reply(LUCA, "Non ho finito, manca il pezzo. Lavorato 1 ora.") == 250
    notice = (await job.mail_to(DISPATCH, "Not finished", after=before)).message()
    assert "manca il pezzo" in notice.get_body(("plain",)).get_content()
    await job.mail_to(LUCA, "non finito", after=before)
    assert (await job.assignment_status())[LUCA] == "confirmed"
    data = await job.intervention()
    assert data["status"] == "open"
    assert "not_done" in data["needs_attention"]
    [activity] = data["activities"]
    assert activity["hours"] == 1.0


async def test_a_not_done_report_never_confirms_a_pending_assignment(job: Job) -> None:
    """"Non posso oggi, torno domani" on an assignment not yet confirmed is no yes: it
    becomes unclear (and the operators are told), never confirmed."""
    before = len(job.sink.messages)
    assert await job.reply(ION, "Non posso oggi, torno domani") == 250
    await job.mail_to(DISPATCH, "Not finished", after=before)
    assert (await job.assignment_status())[ION] == "unclear"
    assert "unclear" in (await job.intervention())["needs_attention"]


async def test_a_report_from_a_stranger_with_a_valid_token_changes_nothing(job: Job) -> None:
    """Another sender replying through Luca's signed address is kept, not acted on."""
    assert await job.reply(LUCA, "Confermo") == 250
    assert await job.reply(LUCA, "Fatto, 2 ore", sender="mallory@evil.test") == 250
    assert (await job.assignment_status())[LUCA] == "confirmed"
    data = await job.intervention()
    assert data["activities"] == []
    stranger = [m for m in data["messages"] if m["kind"] == "technician_reply"][-1]
    assert stranger["verified"] is False
    assert stranger["extra"]["acted"] is False


async def test_a_later_report_replaces_the_earlier(job: Job) -> None:
    """Replying again corrects the hours: one current activity, both replies on the thread."""
    assert await job.reply(LUCA, "Confermo") == 250
    assert await job.reply(LUCA, "Fatto, 3 ore") == 250
    assert await job.reply(LUCA, "Scusate, fatto in 2 ore e mezza") == 250
    data = await job.intervention()
    assert [a["hours"] for a in data["activities"]] == [2.5]
    reports = [m for m in data["messages"] if m.get("verdict") == "done"]
    assert [m["hours"] for m in reports] == [3.0, 2.5]
    rows = await job.daemon.query("SELECT count(*) FROM activities")
    assert rows[0][0] == 2


async def test_a_done_report_without_hours_is_flagged_until_an_operator_fills_them(
    job: Job
) -> None:
    """"Fatto, sostituita la valvola": done with hours null, the echo asks for them, the
    case is flagged hours_unread; PATCH /activities/{id} fills them and clears the flag."""
    assert await job.reply(LUCA, "Confermo") == 250
    before = len(job.sink.messages)
    assert await job.reply(LUCA, "Fatto, sostituita la valvola") == 250
    echo = (await job.mail_to(LUCA, "ore non lette", after=before)).message()
    assert "non siamo riusciti a leggere le ore" in echo.get_body(("plain",)).get_content()
    data = await job.intervention()
    assert "hours_unread" in data["needs_attention"]
    [activity] = data["activities"]
    assert activity["hours"] is None
    report = [m for m in data["messages"] if m["kind"] == "technician_reply"][-1]
    assert (report["verdict"], report["hours"], report["extra"]["hours_unread"]) == (
        "done", None, True)
    fixed = await job.api("PATCH", f"/activities/{activity['id']}", json={"hours": 1.5})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["hours"] == 1.5
    data = await job.intervention()
    assert "hours_unread" not in data["needs_attention"]
    assert any("corrected: work (none) -> 1.5 h" in m["body_text"] for m in data["messages"])


async def test_reports_activities_and_timesheets_on_postgresql(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """The same statements on PostgreSQL: reports become activities and resolve the case,
    an operator adds time, a correction supersedes, the timesheet lists and exports."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url},
                             mail={"operator_addresses": [DISPATCH]})
    async with running_daemon(settings) as daemon:
        job = Job(daemon, relay.handler)
        await job.open()
        assert await job.reply(LUCA, "Confermo") == 250
        assert await job.reply(ION, "Non ho finito, manca il pezzo") == 250
        assert await job.reply(LUCA, "Fatto, 3 ore", pdf=True) == 250
        assert await job.reply(LUCA, "Fatto, 2 ore e mezza", pdf=True) == 250
        assert (await job.intervention())["status"] == "open"  # Ion is not done
        assert await job.reply(ION, "Gata, o oră și 20 de minute") == 250
        data = await job.intervention()
        assert data["status"] == "resolved"
        assert [(a["employee_email"], a["hours"]) for a in data["activities"]] == [
            (LUCA, 2.5), (ION, pytest.approx(4 / 3))]
        added = await job.api("POST", "/interventions/1/activities", json={
            "employee_email": LUCA, "kind": "phone", "hours": 0.25, "text": "Chiamata"})
        assert added.status_code == 201, added.text
        listed = (await job.api("GET", "/activities", params={"employee": LUCA})).json()
        assert [a["hours"] for a in listed["items"]] == [2.5, 0.25]
        exported = await job.api("GET", "/activities", params={"format": "csv"})
        assert exported.content.startswith(b"\xef\xbb\xbf")
        assert exported.content.count(b"\r\n") == 4  # the header and three activities
        closed = await job.api("POST", "/interventions/1/close", json={})
        assert closed.json()["status"] == "closed"


@pytest.mark.parametrize(("default_on", "type_switch"), [(True, False), (False, True)])
async def test_a_request_type_switches_the_closing_mail_against_the_default(
    tmp_path: Path, relay: Controller, default_on: bool, type_switch: bool
) -> None:
    """A request type's own closing-mail switch wins over `[reports]
    customer_closing_mail`: switched off, its resolved case sends the customer nothing
    while the default is on; switched on, it sends the mail while the default is off.
    The API shows the switch, and null puts the type back on the default."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"operator_addresses": [DISPATCH]},
                             reports={"customer_closing_mail": default_on})
    async with running_daemon(settings) as daemon:
        job = Job(daemon, relay.handler)
        await job.open()
        created = await job.api("POST", "/request-types", json={
            "code": "verifica", "customer_closing_mail": not type_switch})
        assert created.status_code == 201, created.text
        assert created.json()["customer_closing_mail"] is (not type_switch)
        cleared = await job.api("PATCH", "/request-types/verifica",
                                json={"customer_closing_mail": None})
        assert cleared.json()["customer_closing_mail"] is None
        switched = await job.api("PATCH", "/request-types/verifica",
                                 json={"customer_closing_mail": type_switch})
        assert switched.json()["customer_closing_mail"] is type_switch
        patched = await job.api("PATCH", "/interventions/1", json={"request_type": "verifica"})
        assert patched.status_code == 200, patched.text
        assert await job.reply(LUCA, "Confermo") == 250
        assert await job.reply(ION, "Confirm") == 250
        assert await job.reply(LUCA, "Fatto, 2 ore") == 250
        assert await job.reply(ION, "Gata, o oră") == 250
        async with asyncio.timeout(15):
            while True:
                if (await job.intervention())["status"] == "resolved":
                    break
                await asyncio.sleep(0.05)
        # The closing mail is queued in the step that resolves the case: the outbox
        # says at once whether one is coming.
        queued = await daemon.query("SELECT count(*) FROM outbox WHERE kind = ?",
                                    "customer_closing")
        assert queued[0][0] == (1 if type_switch else 0)
        if type_switch:
            closing = (await job.mail_to(CUSTOMER, "completato")).message()
            assert closing["In-Reply-To"] == f"<{REQUEST_ID}>"
