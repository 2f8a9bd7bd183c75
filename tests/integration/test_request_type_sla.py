"""A request type's own SLA over a real store (SQLite, or PostgreSQL with
`--store=postgresql`) and the JSON API: a case takes the response and resolution hours
of the contract covering it, else of its request type, else the `[sla]` defaults; each
deadline on its own; changing the type's hours or the case's type plans it again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, running_api

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.records.request_types import create_request_type, update_request_type
from nexusmail.storage.connections import Storage
from nexusmail.tickets.case_edits import edit_intervention
from nexusmail.tickets.cases import find_or_create_customer
from nexusmail.tickets.contracts import add_contract
from nexusmail.tickets.deadline_sweep import DeadlineSweep
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.store import Store

CUSTOMER = "condominio@example.it"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # a Monday


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Round the clock, so the deadlines read as plain hours after the request.
    return Settings.model_validate({
        "calendar": {"working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                     "working_hours": "00:00-24:00"},
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"},
        "sla": {"response_hours": 4, "resolution_hours": 24},
    })


def at(hours: float) -> str:
    moment = START.timestamp() + hours * 3600
    return datetime.fromtimestamp(moment, UTC).isoformat()


async def open_case(store: Storage, settings: Settings, clock: FakeClock,
                    request_type: str) -> int:
    request = OpenRequest(customer_email=CUSTOMER, customer_name="Condominio Aurora",
                          subject="Caldaia in blocco", description="E04",
                          source=Source.API, request_type=request_type)
    number: int = await store.write(
        lambda tx: open_request(tx, request, now=clock.now(), settings=settings))
    return number


async def deadlines(store: Storage, number: int) -> tuple[Any, Any]:
    async with store.read() as conn:
        row = next(iter(await conn.execute_fetchall(
            "SELECT response_due, resolution_due FROM interventions WHERE number = ?",
            (number,))))
    return row[0], row[1]


async def add_type(store: Storage, code: str, **hours: Any) -> None:
    await store.write(lambda tx: create_request_type(tx, {"code": code, **hours}))


async def test_the_type_fills_what_no_contract_sets(store: Storage, settings: Settings,
                                                    clock: FakeClock) -> None:
    """Without a contract a case takes its type's hours; a type without hours leaves
    the defaults; 0 on the type means no deadline; a contract's hour wins over the
    type's, and the type still fills the deadline the contract leaves empty."""
    await add_type(store, "repair", response_hours=2, resolution_hours=8.5)
    await add_type(store, "quote")
    await add_type(store, "courtesy", response_hours=0, resolution_hours=0)
    repair = await open_case(store, settings, clock, "repair")
    quote = await open_case(store, settings, clock, "quote")
    courtesy = await open_case(store, settings, clock, "courtesy")
    free_text = await open_case(store, settings, clock, "something else")
    assert await deadlines(store, repair) == (at(2), at(8.5))
    assert await deadlines(store, quote) == (at(4), at(24))
    assert await deadlines(store, courtesy) == (None, None)
    assert await deadlines(store, free_text) == (at(4), at(24))

    found = await store.write(lambda tx: find_or_create_customer(
        tx, email=CUSTOMER, name="Condominio Aurora", now=clock.now()))
    await store.write(lambda tx: add_contract(
        tx, found.customer_id, {"code": "GOLD", "valid_from": "2026-01-01",
                                "response_hours": 1}, now=clock.now()))
    covered = await open_case(store, settings, clock, "repair")
    assert await deadlines(store, covered) == (at(1), at(8.5))


async def test_new_hours_on_the_type_or_a_new_type_replan_open_cases(
        store: Storage, settings: Settings, clock: FakeClock) -> None:
    """The type's hours changed (or cleared), or the case moved to another type: the
    next sweep works its deadlines out again from its request instant."""
    sweep = DeadlineSweep(store, settings, clock, on_outbox=lambda: None)
    await add_type(store, "repair", response_hours=2, resolution_hours=8)
    await add_type(store, "install", resolution_hours=48)
    number = await open_case(store, settings, clock, "repair")
    await store.write(lambda tx: update_request_type(
        tx, "repair", {"response_hours": 3, "resolution_hours": None}))
    await sweep.tick()
    assert await deadlines(store, number) == (at(3), at(24))
    await store.write(lambda tx: edit_intervention(
        tx, number, {"request_type": "install"}, now=clock.now(), author="op@firm.test"))
    await sweep.tick()
    assert await deadlines(store, number) == (at(4), at(48))


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    async with running_api(store, settings, clock) as running:
        yield running


async def test_the_api_sets_and_clears_a_types_hours(api: Api) -> None:
    """POST takes the hours and a new case of the type shows its deadlines; PATCH
    changes one and null clears it; a negative or non-numeric value is a 422."""
    made = await api.client.post("/api/v1/request-types", json={
        "code": "repair", "response_hours": 1.5, "resolution_hours": 8})
    assert made.status_code == 201, made.text
    assert (made.json()["response_hours"], made.json()["resolution_hours"]) == (1.5, 8)
    case = await api.client.post("/api/v1/interventions", json={
        "customer_email": CUSTOMER, "subject": "Perdita", "description": "Acqua",
        "request_type": "repair"})
    assert case.status_code == 201, case.text
    assert (case.json()["response_due"], case.json()["resolution_due"]) == (at(1.5), at(8))
    patched = await api.client.patch("/api/v1/request-types/repair",
                                     json={"resolution_hours": None})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["response_hours"], patched.json()["resolution_hours"]) == (1.5,
                                                                                      None)
    for bad in (-1, "soon"):
        refused = await api.client.patch("/api/v1/request-types/repair",
                                         json={"response_hours": bad})
        assert refused.status_code == 422, refused.text
        assert "response_hours" in refused.json()["error"]
