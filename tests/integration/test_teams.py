"""End to end: a team assigned over the API, its members' replies over SMTP, the first
confirmation taking the job, and the mails captured at a real SMTP sink."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import Daemon, make_settings, running_daemon
from postgres_server import PostgresCluster
from smtp_sink import Captured, CaptureHandler

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.tickets.cases import add_employee

LUCA, ION = "luca@firm.test", "ion@firm.test"
OPERATOR = "dispatch@firm.test"


class TeamCase:
    """Intervention #1 assigned to team "Caldaie" (Luca, Italian; Ion, Romanian)."""

    def __init__(self, daemon: Daemon, sink: CaptureHandler) -> None:
        self.daemon = daemon
        self.sink = sink
        self.token = ""
        self.mails: dict[str, Captured] = {}

    async def open(self) -> None:
        store = self.daemon.running.store
        now = SystemClock().now()
        self.token = await store.write(partial(create_token, name="test", now=now))
        for email, name, lang in [(LUCA, "Luca Bianchi", "it"), (ION, "Ion Popescu", "ro")]:
            await store.write(partial(add_employee, email=email, name=name, language=lang,
                                      now=now))
        created = await self.api("POST", "/teams", json={
            "name": "Caldaie", "members": [ION, LUCA.upper()]})
        assert created.status_code == 201, created.text
        assert created.json()["members"] == [ION, LUCA]
        opened = await self.api("POST", "/interventions", json={
            "customer_email": "cliente@example.it", "customer_name": "Rossi Srl",
            "subject": "Caldaia in blocco", "description": "Codice errore E04."})
        assert opened.status_code == 201, opened.text
        assigned = await self.api("POST", "/interventions/1/assignments",
                                  json={"team": "Caldaie", "note": "Urgente"})
        assert assigned.status_code == 201, assigned.text
        body = assigned.json()
        assert body["team"] == "Caldaie"
        assert sorted((a["employee_email"], a["status"], a["team"])
                      for a in body["assignments"]) == [
            (ION, "pending", "Caldaie"), (LUCA, "pending", "Caldaie")]
        for address in (LUCA, ION):
            # The first copy: with two daemons on one database the relay may see the
            # same outbox row twice (same Message-ID), which the receiver folds.
            mails = await self.mails_to(address, "[#1]")
            assert len({m.message_id for m in mails}) == 1
            self.mails[address] = mails[0]

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.daemon.web_url + "/api/v1") as client:
            return await client.request(method, path, headers={
                "Authorization": f"Bearer {self.token}"}, **kwargs)

    async def mails_to(self, recipient: str, subject_part: str, n: int = 1,
                       within_s: float = 15) -> list[Captured]:
        """Wait for `n` mails to `recipient` whose subject has `subject_part`."""
        async with asyncio.timeout(within_s):
            while True:
                found = [m for m in self.sink.messages if m.rcpt_tos == [recipient]
                         and subject_part in str(m.message()["Subject"])]
                if len(found) >= n:
                    return found
                await asyncio.sleep(0.05)

    async def reply(self, employee: str, body: str, *, via: Daemon | None = None) -> int:
        original = self.mails[employee].message()
        msg = EmailMessage()
        msg["From"] = employee
        msg["To"] = original["Reply-To"]
        msg["Subject"] = "Re: " + str(original["Subject"])
        msg["Message-ID"] = f"<{uuid.uuid4().hex}@firm.test>"
        msg["In-Reply-To"] = original["Message-ID"]
        msg["References"] = original["Message-ID"]
        msg.set_content(body)
        code, _ = await (via or self.daemon).send(msg.as_bytes(), sender=employee,
                                         recipients=[str(original["Reply-To"])])
        return code

    async def states(self) -> dict[str, str]:
        rows = await self.daemon.query(
            "SELECT e.email, a.status FROM assignments a"
            " JOIN employees e ON e.id = a.employee_id")
        return {row[0]: row[1] for row in rows}

    async def replies(self) -> list[dict[str, Any]]:
        detail = (await self.api("GET", "/interventions/1")).json()
        return [m for m in detail["messages"] if m["kind"] == "technician_reply"]


def operators_settings(data: Path, relay: Controller, **storage: Any) -> Any:
    return make_settings(data, relay_port=relay.port,
                         mail={"operator_addresses": [OPERATOR]},
                         **({"storage": storage} if storage else {}))


@pytest.fixture
async def case(tmp_path: Path, relay: Controller) -> AsyncIterator[TeamCase]:
    async with running_daemon(operators_settings(tmp_path / "data", relay)) as daemon:
        opened = TeamCase(daemon, relay.handler)
        await opened.open()
        yield opened


async def test_first_confirmation_takes_the_job_and_the_colleague_is_told(
        case: TeamCase) -> None:
    """Both members get the assignment mail in their language; Luca confirms: Ion's
    assignment is `taken` and Ion gets "taken by Luca" in Romanian, under his mail."""
    assert case.mails[LUCA].message()["Content-Language"] == "it"
    assert case.mails[ION].message()["Content-Language"] == "ro"
    assert "Urgente" in case.mails[ION].message().get_body(("plain",)).get_content()
    assert await case.reply(LUCA, "Confermo, passo domani.") == 250
    [notice] = await case.mails_to(ION, "Preluată de Luca Bianchi")
    message = notice.message()
    assert message["Content-Language"] == "ro"
    assert message["In-Reply-To"] == case.mails[ION].message()["Message-ID"]
    assert "echipei dumneavoastră Caldaie" in message.get_body(("plain",)).get_content()
    assert await case.states() == {LUCA: "confirmed", ION: "taken"}
    assignments = (await case.api("GET", "/interventions/1")).json()["assignments"]
    assert {a["employee_email"]: a["status"] for a in assignments} == {
        LUCA: "confirmed", ION: "taken"}
    # Luca is not told his own job was taken.
    assert not [m for m in case.sink.messages if m.rcpt_tos == [LUCA]
                and "Presa in carico" in str(m.message()["Subject"])]


async def test_a_reply_from_the_member_whose_job_was_taken_changes_nothing(
        case: TeamCase) -> None:
    """After Luca took the job, Ion's confirmation is kept on the thread, not applied;
    his assignment stays `taken` and the job stays Luca's."""
    assert await case.reply(LUCA, "Confermo.") == 250
    await case.mails_to(ION, "Preluată de")
    assert await case.reply(ION, "Confirm, vin mâine.") == 250
    replies = await case.replies()
    assert [(m["from"], m["extra"]["acted"]) for m in replies] == [(LUCA, True), (ION, False)]
    assert replies[1]["extra"]["not_acted"] == "taken by Luca Bianchi"
    assert await case.states() == {LUCA: "confirmed", ION: "taken"}
    rows = await case.daemon.query("SELECT e.email FROM team_dispatches d"
                                   " JOIN employees e ON e.id = d.taken_by")
    assert rows == [(LUCA,)]


async def test_every_member_rejecting_alerts_the_operators_once(case: TeamCase) -> None:
    """One no is not news; when both have said no, the operators get one alert naming
    the team and each member's reason."""
    assert await case.reply(LUCA, "Rifiuto\nSono in ferie.") == 250
    assert await case.reply(ION, "Refuz\nSunt bolnav.") == 250
    [alert] = await case.mails_to(OPERATOR, "Caldaie")
    text = alert.message().get_body(("plain",)).get_content()
    assert "Sono in ferie." in text
    assert "Sunt bolnav." in text
    assert await case.states() == {LUCA: "rejected", ION: "rejected"}
    await asyncio.sleep(0.5)
    to_operator = [m for m in case.sink.messages if m.rcpt_tos == [OPERATOR]]
    assert len(to_operator) == 1, "no per-member rejection notice, one team alert"


async def test_two_confirmations_at_once_exactly_one_wins(case: TeamCase) -> None:
    """Both members confirm in the same instant over SMTP: one assignment is confirmed,
    the other `taken`, and only the loser is told."""
    codes = await asyncio.gather(case.reply(LUCA, "Confermo."), case.reply(ION, "Confirm."))
    assert codes == [250, 250]
    states = await case.states()
    assert sorted(states.values()) == ["confirmed", "taken"]
    [loser] = [email for email, state in states.items() if state == "taken"]
    await case.mails_to(loser, "[#1]", n=2)
    acted = [m["extra"]["acted"] for m in await case.replies()]
    assert sorted(acted) == [False, True]


async def test_teams_are_listed_and_checked(case: TeamCase) -> None:
    """GET lists teams with members; a duplicate name is 409, an unknown member 404, an
    unknown team to assign 404."""
    listed = (await case.api("GET", "/teams")).json()
    assert [(t["name"], t["members"]) for t in listed] == [("Caldaie", [ION, LUCA])]
    again = await case.api("POST", "/teams", json={"name": "Caldaie", "members": [LUCA]})
    assert again.status_code == 409
    stranger = await case.api("POST", "/teams", json={"name": "X", "members": ["x@y.test"]})
    assert stranger.status_code == 404
    empty = await case.api("POST", "/teams", json={"name": "X", "members": []})
    assert empty.status_code == 422
    unknown = await case.api("POST", "/interventions/1/assignments", json={"team": "Nessuna"})
    assert unknown.status_code == 404


async def test_concurrent_confirmations_on_postgresql(
        tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster) -> None:
    """The same race on PostgreSQL: of two confirmations sent at once, exactly one
    takes the job."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = operators_settings(tmp_path / "data", relay, database_url=url)
    async with running_daemon(settings) as daemon:
        case = TeamCase(daemon, relay.handler)
        await case.open()
        codes = await asyncio.gather(case.reply(LUCA, "Confermo."),
                                     case.reply(ION, "Confirm."))
        assert codes == [250, 250]
        assert sorted((await case.states()).values()) == ["confirmed", "taken"]
        rows = await daemon.query("SELECT taken_by FROM team_dispatches")
        assert len(rows) == 1
        assert rows[0][0] is not None



async def test_two_daemons_on_one_database_still_give_the_job_once(
        tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster) -> None:
    """Two daemons share one PostgreSQL database (each its own writer); Luca's
    confirmation reaches one and Ion's the other at the same moment: the guarded UPDATE
    still lets exactly one take the job."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    shared_key = {"secret_keys": ["k" * 64]}
    first = make_settings(tmp_path / "a", relay_port=relay.port,
                          mail={"operator_addresses": [OPERATOR]},
                          storage={"database_url": url}, replies=shared_key)
    second = make_settings(tmp_path / "b", relay_port=relay.port,
                           mail={"operator_addresses": [OPERATOR]},
                           storage={"database_url": url}, replies=shared_key)
    async with running_daemon(first) as daemon_a, running_daemon(second) as daemon_b:
        case = TeamCase(daemon_a, relay.handler)
        await case.open()
        codes = await asyncio.gather(case.reply(LUCA, "Confermo.", via=daemon_a),
                                     case.reply(ION, "Confirm.", via=daemon_b))
        assert codes == [250, 250]
        assert sorted((await case.states()).values()) == ["confirmed", "taken"]
        acted = [m["extra"]["acted"] for m in await case.replies()]
        assert sorted(acted) == [False, True]
