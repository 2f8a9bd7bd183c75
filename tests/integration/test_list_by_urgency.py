"""The admin list in urgency order over a real store (SQLite, or PostgreSQL with
`--store=postgresql`) and on the page: open cases by resolution deadline, soonest
first, then the cases without a running deadline; paging walks each case once,
forward and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from admin_harness import add_operator, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.records.request_types import create_request_type
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets import search
from nexusmail.tickets.case_edits import hold_intervention
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROUND_THE_CLOCK = {"working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "working_hours": "00:00-24:00"}
OPERATOR = "anna@firm.test"
# Request type -> resolution hours; the cases are opened in this order (numbers 1..5).
TYPES = {"slow": 10, "fast": 2, "none": 0, "mid": 5, "held": 1}


def settings_at(data_dir: Path) -> Settings:
    return make_settings(data_dir, calendar=ROUND_THE_CLOCK)


async def open_cases(store: Storage, settings: Settings, clock: FakeClock) -> None:
    for code, hours in TYPES.items():
        request = OpenRequest(customer_email="rossi@example.it", customer_name="Rossi",
                              subject=f"Caso {code}", description="Guasto",
                              source=Source.API, request_type=code)

        def add(tx: WriteTx, code: str = code, hours: int = hours,
                request: OpenRequest = request) -> None:
            create_request_type(tx, {"code": code, "resolution_hours": hours})
            open_request(tx, request, now=clock.now(), settings=settings)

        await store.write(add)
    await store.write(lambda tx: hold_intervention(tx, 5, reason="Pezzo in arrivo",
                                                   now=clock.now(), author=OPERATOR))


async def test_urgency_order_pages_forward_and_back(store: Storage, tmp_path: Path) -> None:
    """fast (2 h), mid (5 h), slow (10 h), then the case with no deadline and the held
    one (its deadline is not running), by number; two at a time forward, then back."""
    await open_cases(store, settings_at(tmp_path), FakeClock(START))
    everything = search.ListFilter()
    async with store.read() as conn:
        first = await search.list_page(conn, everything, order="due", limit=2)
        second = await search.list_page(conn, everything, order="due", limit=2,
                                        before=first.older)
        third = await search.list_page(conn, everything, order="due", limit=2,
                                       before=second.older)
        back = await search.list_page(conn, everything, order="due", limit=2,
                                      after=third.newer)
    pages = [[r["number"] for r in page.rows] for page in (first, second, third)]
    assert pages == [[2, 4], [1, 3], [5]]
    assert third.older is None
    assert [r["number"] for r in back.rows] == [1, 3]


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    clock = FakeClock(START)
    async with running_daemon(settings_at(tmp_path / "data"), clock=clock) as running:
        await add_operator(running, OPERATOR)
        await open_cases(running.running.store, running.settings, clock)
        yield running


async def test_the_page_offers_and_keeps_the_urgency_order(daemon: Daemon) -> None:
    """The list's order choice has "urgency" (Italian "urgenza"), kept selected, and
    the cases come soonest deadline first."""
    async with logged_in(daemon, OPERATOR) as client:
        page = (await client.get("/", params={"sort": "due"})).text
        italian = (await client.get("/", params={"sort": "due"},
                                    headers={"accept-language": "it"})).text
    assert '<option value="due" selected>urgency</option>' in page
    assert '<option value="due" selected>urgenza</option>' in italian
    listed = [int(part.split("<", 1)[0]) for part in page.split('<span class="num">#')[1:]]
    assert listed == [2, 4, 1, 3, 5]
