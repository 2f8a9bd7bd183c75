"""Deadlines on the admin pages with an injected clock: the list and the thread say how
far off the next deadline is ("overdue 2 h"), in the operator's language, and the
list filters the overdue and due-today cases; the customer card lists the contracts with
the prepaid hours used and left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from admin_harness import add_operator, customer_mail, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import FakeClock
from nexusmail.tickets.activities import ActivityKind, NewActivity, add_activity
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.contracts import add_contract

OPERATOR = "anna@firm.test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # a Monday, 10:00 in Rome


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def daemon(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", sla={
        "response_hours": 1, "resolution_hours": 8, "sweep_interval_s": 0.1})
    async with running_daemon(settings, clock=clock) as running:
        await add_operator(running, OPERATOR)
        yield running


async def planned(daemon: Daemon) -> None:
    for _ in range(250):
        if await daemon.query("SELECT 1 FROM interventions WHERE response_due IS NOT NULL"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the deadlines were not worked out in time")


async def test_list_and_thread_show_the_next_deadline(daemon: Daemon,
                                                      clock: FakeClock) -> None:
    """Response due at 11:00 Rome time: at 13:00 the list and the thread show "response:
    overdue 2 h" (in Italian "risposta: scaduto da 2 h"), the thread both deadlines; the
    overdue filter lists the case, and a case with no deadline is not listed."""
    assert (await daemon.send(customer_mail("Caldaia", "In blocco.")))[0] == 250
    await planned(daemon)
    await daemon.running.store.write(lambda tx: tx.execute(
        "INSERT INTO interventions (customer_id, subject, status, source, sla_planned_at,"
        " created_at, updated_at) SELECT customer_id, 'Senza scadenze', 'open', 'api',"
        " created_at, created_at, created_at FROM interventions WHERE number = 1"))
    clock.advance(timedelta(hours=3))
    async with logged_in(daemon, OPERATOR) as client:
        listing = (await client.get("/")).text
        assert "response: overdue 2 h" in listing
        thread = (await client.get("/interventions/1")).text
        assert "response: overdue 2 h" in thread
        assert "Response due" in thread
        assert "Resolution due" in thread
        overdue = (await client.get("/", params={"due": "overdue"})).text
        assert "/interventions/1" in overdue
        assert "/interventions/2" not in overdue
        italian = (await client.get("/", headers={"accept-language": "it"})).text
        assert "risposta: scaduto da 2 h" in italian


async def test_customer_card_lists_contracts_with_hours_used(daemon: Daemon,
                                                             clock: FakeClock) -> None:
    """The customer card shows each contract with its hours: 20 prepaid, 2.5 used by the
    work on a case it covers, 17.5 left."""
    assert (await daemon.send(customer_mail("Caldaia", "In blocco.")))[0] == 250
    [(customer_id,)] = await daemon.query("SELECT customer_id FROM interventions")
    store = daemon.running.store
    await store.write(lambda tx: add_contract(tx, customer_id, {
        "code": "GOLD-1", "type": "maintenance", "valid_from": "2026-01-01",
        "response_hours": 4, "prepaid_hours": 20, "notes": "Caldaie"}, now=clock.now()))
    await store.write(lambda tx: add_employee(tx, email="luca@firm.test", name="Luca",
                                              language="it", now=clock.now()))

    async def covered() -> bool:
        return bool(await daemon.query("SELECT 1 FROM interventions WHERE contract_id = 1"))

    for _ in range(250):
        if await covered():
            break
        await asyncio.sleep(0.02)
    work = NewActivity(employee_email="luca@firm.test", kind=ActivityKind.WORK, minutes=150,
                       text="", day=date(2026, 3, 2), author="api:test")
    await store.write(lambda tx: add_activity(tx, 1, work, now=clock.now()))
    async with logged_in(daemon, OPERATOR) as client:
        card = (await client.get(f"/customers/{customer_id}")).text
    assert "GOLD-1" in card
    assert "maintenance" in card
    assert "<td>20 h</td>" in card
    assert "<td>2.5 h</td>" in card
    assert "17.5 h" in card
