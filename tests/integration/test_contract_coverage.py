"""Which contract covers a case when two are valid (real store: SQLite, or PostgreSQL
with `--store=postgresql`): the one that lists the case's machine, else the one that
started last; a machine set on the case later moves it at the next sweep."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon_harness import make_settings

from nexusmail.clock import FakeClock
from nexusmail.records.equipment import add_equipment
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.case_edits import edit_intervention
from nexusmail.tickets.cases import find_or_create_customer
from nexusmail.tickets.contracts import add_contract
from nexusmail.tickets.deadline_sweep import DeadlineSweep
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROUND_THE_CLOCK = {"working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "working_hours": "00:00-24:00"}


async def covering(store: Storage, number: int) -> Any:
    async with store.read() as conn:
        rows = list(await conn.execute_fetchall(
            "SELECT c.code FROM interventions i LEFT JOIN contracts c ON c.id = i.contract_id"
            " WHERE i.number = ?", (number,)))
    return rows[0][0]


async def test_the_contract_listing_the_machine_covers_its_cases(
        store: Storage, tmp_path: Path) -> None:
    """BOILER (started first, lists the boiler) covers the boiler's case; GENERAL
    (started later) covers a case without a machine, and a case that gets the boiler
    later moves to BOILER at the next sweep."""
    clock = FakeClock(START)
    settings = make_settings(tmp_path, calendar=ROUND_THE_CLOCK)

    def setup(tx: WriteTx) -> int:
        customer = find_or_create_customer(tx, email="rossi@example.it", name="Rossi",
                                           now=clock.now()).customer_id
        boiler = add_equipment(tx, {"customer_id": customer, "serial": "AB-1234X"},
                               now=clock.now())
        add_contract(tx, customer, {"code": "BOILER", "valid_from": "2026-01-01",
                                    "response_hours": 1, "equipment_ids": [boiler]},
                     now=clock.now())
        add_contract(tx, customer, {"code": "GENERAL", "valid_from": "2026-02-01",
                                    "response_hours": 8}, now=clock.now())
        return boiler

    boiler = await store.write(setup)

    async def open_case(**links: Any) -> int:
        request = OpenRequest(customer_email="rossi@example.it", customer_name="Rossi",
                              subject="Caldaia", description="In blocco",
                              source=Source.API, **links)
        number: int = await store.write(
            lambda tx: open_request(tx, request, now=clock.now(), settings=settings))
        return number

    with_boiler = await open_case(equipment_serial="AB-1234X",
                                  links=frozenset({"equipment_serial"}))
    without = await open_case()
    assert await covering(store, with_boiler) == "BOILER"
    assert await covering(store, without) == "GENERAL"
    await store.write(lambda tx: edit_intervention(
        tx, without, {"equipment_id": boiler}, now=clock.now(), author="op@firm.test"))
    await DeadlineSweep(store, settings, clock, on_outbox=lambda: None).tick()
    assert await covering(store, without) == "BOILER"
