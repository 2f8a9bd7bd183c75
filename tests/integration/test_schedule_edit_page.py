"""Editing a service schedule on the admin page, over HTTP against the real daemon: a
dispatcher changes the rule and the next dates follow; a change of subject alone keeps
the schedule's position; a rule that cannot work, or a viewer, changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from admin_harness import add_employees, add_operator, csrf_of, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import SystemClock
from nexusmail.tickets.recurrence import Interval
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule

DISPATCHER, VIEWER = "desk@firm.test", "look@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, "boss@firm.test")
        await add_operator(running, DISPATCHER)
        await add_operator(running, VIEWER, role="viewer")
        await add_employees(running, ("luca@firm.test", "Luca Bianchi", "it"))
        now = SystemClock().now()
        spec = ScheduleSpec(customer_email="verdi@example.it", customer_name="Condominio Verdi",
                            subject="Manutenzione caldaia", interval=Interval.YEARLY,
                            first_date=date(now.year + 1, 3, 10), lead_days=14,
                            assignees=("luca@firm.test",))
        await running.running.store.write(
            lambda tx: create_schedule(tx, spec, today=now.date(), now=now))
        yield running


async def _row(daemon: Daemon) -> tuple[Any, ...]:
    async with daemon.running.store.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT subject, interval, every, day_rule, first_date, until_date, count,"
            " lead_days, assignees, next_occurrence_on, next_opening_on FROM schedules"
            " WHERE id = 1")
    return tuple(next(iter(rows)))


def _form(**changes: str) -> dict[str, str]:
    year = SystemClock().now().year + 1
    return {"subject": "Manutenzione caldaia", "description": "", "interval": "yearly",
            "every": "1", "day_rule": "same_day", "first_date": f"{year}-03-10",
            "until": "", "count": "", "lead_days": "14", "contract_ref": "",
            "assignees": "luca@firm.test", **changes}


async def test_a_new_rule_moves_the_next_dates(daemon: Daemon) -> None:
    """Monthly from the 1st of next month, 5 days ahead: the stored rule and the next
    occurrence follow, and the page lists the new dates."""
    year = SystemClock().now().year + 1
    async with logged_in(daemon, DISPATCHER) as client:
        page = await client.get("/schedules/1")
        assert 'action="/schedules/1"' in page.text
        saved = await client.post("/schedules/1", data={
            "csrf_token": csrf_of(page.text),
            **_form(interval="monthly", first_date=f"{year}-01-01", lead_days="5",
                    count="6")}, follow_redirects=True)
        assert saved.status_code == 200
        assert "Schedule saved." in saved.text
    row = await _row(daemon)
    assert row[1:8] == ("monthly", 1, "same_day", f"{year}-01-01", None, 6, 5)
    assert row[9:] == (f"{year}-01-01", f"{year - 1}-12-27")


async def test_a_new_subject_alone_keeps_the_position(daemon: Daemon) -> None:
    """Changing only the subject writes the subject and leaves the rule and the next
    dates as they were."""
    before = await _row(daemon)
    async with logged_in(daemon, DISPATCHER) as client:
        csrf = csrf_of((await client.get("/schedules/1")).text)
        saved = await client.post("/schedules/1", data={
            "csrf_token": csrf, **_form(subject="Manutenzione annuale")})
        assert saved.status_code == 303
    after = await _row(daemon)
    assert after[0] == "Manutenzione annuale"
    assert after[1:] == before[1:]


@pytest.mark.parametrize(("who", "changes", "status"), [
    (DISPATCHER, {"interval": "weekly", "day_rule": "last_day"}, 422),
    (DISPATCHER, {"interval": "hourly"}, 422),
    (DISPATCHER, {"every": "0"}, 422),
    (DISPATCHER, {"first_date": "10/03/2027"}, 422),
    (DISPATCHER, {"assignees": "nobody@firm.test"}, 422),
    (VIEWER, {"interval": "monthly"}, 403),
])
async def test_a_refused_edit_changes_nothing(daemon: Daemon, who: str,
                                              changes: dict[str, str], status: int) -> None:
    """A rule that cannot work, a value out of range, an unknown assignee, or a viewer:
    refused, and the schedule is as it was."""
    before = await _row(daemon)
    async with logged_in(daemon, who) as client:
        csrf = csrf_of((await client.get("/settings")).text)
        reply = await client.post("/schedules/1", data={"csrf_token": csrf, **_form(**changes)})
    assert reply.status_code == status, reply.text[:300]
    assert await _row(daemon) == before


async def test_the_edit_form_in_italian(daemon: Daemon) -> None:
    """The form speaks the operator's language, and the save's message too."""
    async with logged_in(daemon, DISPATCHER) as client:
        csrf = csrf_of((await client.get("/settings")).text)
        await client.post("/settings", data={"csrf_token": csrf, "language": "it"})
        page = await client.get("/schedules/1")
        assert "Modifica la scadenza" in page.text
        saved = await client.post("/schedules/1", data={
            "csrf_token": csrf, **_form(lead_days="7")}, follow_redirects=True)
        assert "Scadenza salvata." in saved.text
