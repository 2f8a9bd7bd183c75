"""The team and sequence pages over HTTP: with a team, a sequence and a run on a thread,
every page reads in the Italian and Romanian operator's language; a form with a bad
step answers 422 naming the step, and changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
from admin_harness import add_employees, csrf_of, customer_mail, log_in
from admin_languages import english_left, operator_speaking
from aiosmtpd.controller import Controller
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import SystemClock
from nexusmail.tickets.reply_tokens import load_reply_keys
from nexusmail.tickets.sequence_steps import start_and_mail
from nexusmail.tickets.sequences import SequenceDef, StepDef, create_sequence
from nexusmail.tickets.teams import create_team

LUCA, ION = "luca@firm.test", "ion@firm.test"
PAGES = ["/teams", "/teams/1", "/sequences", "/sequences/1", "/interventions/1"]


async def seed(daemon: Daemon) -> None:
    """Team Caldaie, sequence MAN-1 (a call for the team, a visit for Luca), started on
    case 1 with step 1 mailed."""
    await add_employees(daemon, (LUCA, "Luca Bianchi", "it"), (ION, "Ion Popescu", "ro"))
    assert (await daemon.send(customer_mail("Caldaia in blocco", "Non parte.")))[0] == 250
    store, now = daemon.running.store, SystemClock().now()
    await store.write(partial(create_team, name="Caldaie", members=[LUCA, ION], now=now))
    plan = SequenceDef(code="MAN-1", description="Manutenzione", steps=[
        StepDef(action="call", team="Caldaie", expected_hours=0.25, postpone_days=2,
                needs_report=False),
        StepDef(action="visit", employee_email=LUCA, expected_hours=2)])
    await store.write(partial(create_sequence, plan=plan, now=now))
    keys = load_reply_keys(daemon.settings)
    await store.write(partial(start_and_mail, number=1, code="MAN-1", started_by="test",
                              now=now, settings=daemon.settings, reply_keys=keys))


@asynccontextmanager
async def logged_in(daemon: Daemon, email: str) -> AsyncIterator[httpx.AsyncClient]:
    """A logged-in client that waits out a slow login (its password hash is costly on
    purpose, and slower still on a busy machine)."""
    async with httpx.AsyncClient(base_url=daemon.web_url, timeout=30) as client:
        reply = await log_in(client, email)
        assert reply.status_code == 303, reply.text
        yield client


def interface_of(page: str) -> str:
    """The page without the thread's own texts (mail bodies and subjects, and the notes
    the daemon writes, which are the case's record rather than the interface)."""
    return re.sub(r'<div class="(?:body|subject|addr)">.*?</div>', "", page, flags=re.S)


@pytest.mark.parametrize("language", ["it", "ro"])
async def test_the_pages_read_in_the_operators_language(tmp_path: Path, relay: Controller,
                                                        language: str) -> None:
    """Teams, a team, sequences, a sequence and the thread with its plan (a blocked
    step's reason too): no English text of ours left for an Italian or Romanian
    operator."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as daemon:
        await seed(daemon)
        email = f"op-{language}@firm.test"
        await operator_speaking(daemon, email, language)
        async with logged_in(daemon, email) as client:
            for path in PAGES:
                page = await client.get(path)
                assert page.status_code == 200, path
                assert english_left(interface_of(page.text), language) == [], path
            thread = (await client.get("/interventions/1")).text
            assert {"it": "Sequenza MAN-1", "ro": "Secvența MAN-1"}[language] in thread
            # A step that could not be mailed says why in the operator's language too.
            await daemon.running.store.write(lambda tx: tx.execute(
                "UPDATE sequence_run_steps SET status = 'blocked', problem = ?"
                " WHERE number = 2", ("its employee is not active",)))
            blocked = (await client.get("/interventions/1")).text
            assert {"it": "il suo dipendente non è più attivo",
                    "ro": "angajatul său nu mai este activ"}[language] in blocked
            assert english_left(interface_of(blocked), language) == []


async def test_a_bad_step_is_refused_naming_it(tmp_path: Path, relay: Controller) -> None:
    """A step with hours that are no number: 422 naming step 2, and no sequence stored;
    a team without members: 422, no team."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as daemon:
        await add_employees(daemon, (LUCA, "Luca Bianchi", "it"))
        await operator_speaking(daemon, "op@firm.test", "en")
        async with logged_in(daemon, "op@firm.test") as client:
            csrf = csrf_of((await client.get("/sequences")).text)
            refused = await client.post("/sequences", data={
                "csrf_token": csrf, "code": "X-1",
                "assignee_1": f"employee:{LUCA}", "action_1": "call",
                "assignee_2": f"employee:{LUCA}", "action_2": "visit", "hours_2": "two"})
            assert refused.status_code == 422
            assert "Step 2" in refused.text
            nobody = await client.post("/teams", data={"csrf_token": csrf, "name": "Vuota"})
            assert nobody.status_code == 422
            assert "Tick at least one member." in nobody.text
        assert await daemon.query("SELECT count(*) FROM sequences") == [(0,)]
        assert await daemon.query("SELECT count(*) FROM teams") == [(0,)]
