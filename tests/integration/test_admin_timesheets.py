"""The admin page's time views over plain HTTP against the real daemon: activities on
the thread, the monthly hours-per-technician table and its CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from functools import partial
from pathlib import Path

import httpx
import pytest
from admin_harness import add_employees, add_operator, csrf_of, customer_mail, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import SystemClock
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.activities import ActivityKind, NewActivity, add_activity

OPERATOR = "anna@firm.test"
LUCA, ION = "luca@firm.test", "ion@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, OPERATOR)
        await add_employees(running, (LUCA, "Luca Bianchi", "it"), (ION, "Ion Popescu", "ro"))
        assert (await running.send(customer_mail("Caldaia", "Non parte.")))[0] == 250
        for who, kind, minutes, day in [(LUCA, ActivityKind.WORK, 150, 3),
                                        (LUCA, ActivityKind.WORK, 20, 3),
                                        (ION, ActivityKind.TRAVEL, 40, 4),
                                        (ION, ActivityKind.PHONE, 15, 28)]:
            await running.running.store.write(partial(
                add_activity, number=1, new=NewActivity(
                    employee_email=who, kind=kind, minutes=minutes, text=f"{kind} {minutes}",
                    day=date(2026, 2, day), author="operator:" + OPERATOR),
                now=SystemClock().now()))
        yield running


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(daemon, OPERATOR) as opened:
        yield opened


async def test_the_month_shows_hours_per_technician_per_day(client: httpx.AsyncClient) -> None:
    """February: Luca's two entries of the 3rd make 2 h 50 min that day; Ion's travel is
    apart from his work; the customer's totals add everything."""
    page = await client.get("/timesheets?month=2026-02")
    assert page.status_code == 200
    assert "Timesheet 2026-02" in page.text
    luca_row = page.text.split(f"<th>{LUCA}</th>")[1].split("</tr>")[0]
    assert "<td>2 h 50 min</td>" in luca_row
    ion_row = page.text.split(f"<th>{ION}</th>")[1].split("</tr>")[0]
    assert "<td>15 min</td>" in ion_row
    assert "<td>40 min</td>" in ion_row
    assert "href=\"/timesheets?month=2026-03\"" in page.text
    assert "No time recorded in 2026-03" in (await client.get("/timesheets?month=2026-03")).text
    assert (await client.get("/timesheets?month=March")).status_code == 422


async def test_the_month_downloads_as_csv(client: httpx.AsyncClient) -> None:
    """The page's CSV has the month's four activities with a BOM and ";"."""
    response = await client.get("/timesheets.csv?month=2026-02")
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")),
                               delimiter=";"))
    assert [(r["employee_email"], r["kind"], r["work_minutes"], r["travel_minutes"])
            for r in rows] == [(LUCA, "work", "150", ""), (LUCA, "work", "20", ""),
                               (ION, "travel", "", "40"), (ION, "phone", "15", "")]


async def test_thread_lists_activities_and_a_resolved_case_can_be_closed(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """The thread page has the activities table; a resolved case offers Close and Reopen,
    and closing it works."""
    def resolve(tx: WriteTx) -> None:
        tx.execute("UPDATE interventions SET status = 'resolved' WHERE number = 1")
    await daemon.running.store.write(resolve)
    page = await client.get("/interventions/1")
    assert "<h2>Activities <small>(4)</small></h2>" in page.text
    assert "2.5 h" in page.text
    assert "Close the intervention" in page.text
    assert "Reopen the intervention" in page.text
    closed = await client.post("/interventions/1/close", data={"csrf_token": csrf_of(page.text)})
    assert closed.status_code == 303
    assert await daemon.query("SELECT status FROM interventions") == [("closed",)]


async def test_operators_record_time_and_fill_unread_hours_on_the_page(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """The thread page's form records "2h30" of a visit; a report's unread hours are
    filled in from the table's own form, as typed ("1,5")."""
    page = await client.get("/interventions/1")
    added = await client.post("/interventions/1/activities", data={
        "csrf_token": csrf_of(page.text), "employee": LUCA, "kind": "visit",
        "hours": "2h30", "date": "2026-02-10", "text": "Sopralluogo"})
    assert added.status_code == 303
    assert await daemon.query("SELECT kind, work_minutes FROM activities WHERE day ="
                              " '2026-02-10'") == [("visit", 150)]
    bad = await client.post("/interventions/1/activities", data={
        "csrf_token": csrf_of(page.text), "employee": LUCA, "kind": "visit",
        "hours": "tanto"})
    assert bad.status_code == 422

    def unread_report(tx: WriteTx) -> None:
        tx.execute("UPDATE activities SET work_minutes = NULL, verdict = 'done' WHERE id = 1")
    await daemon.running.store.write(unread_report)
    page = await client.get("/interventions/1")
    assert 'action="/activities/1/hours"' in page.text
    filled = await client.post("/activities/1/hours", data={
        "csrf_token": csrf_of(page.text), "hours": "1,5"})
    assert filled.status_code == 303
    assert await daemon.query("SELECT work_minutes FROM activities WHERE id = 1") == [(90,)]
