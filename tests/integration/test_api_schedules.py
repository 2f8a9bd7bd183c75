"""Service schedules through the JSON API, over a real socket with a real store
(tests/support/api_harness.py); ticks run by the real Scheduler on the same store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, running_api

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.scheduler import Scheduler
from nexusmail.tickets.store import Store

KEYS = [b"api-schedule-signing-key-0123456789ab"]
MARCO = "marco.bianchi@firm.test"
SCHEDULE = {
    "customer_email": "Condominio@Example.it", "customer_name": "Condominio Aurora",
    "subject": "Manutenzione caldaia", "description": "Controllo fumi e pulizia.",
    "interval": "monthly", "first_date": "2026-03-31", "lead_days": 3,
    "contract_ref": "C-17", "assignees": [MARCO],
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"},
    })


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    def employees(tx: sqlite3.Connection) -> None:
        add_employee(tx, email=MARCO, name="Marco Bianchi", language="it", now=clock.now())

    await store.write(employees)
    async with running_api(store, settings, clock, reply_keys=KEYS) as running:
        yield running


async def create(api: Api, **changes: Any) -> dict[str, Any]:
    response = await api.client.post("/api/v1/schedules", json={**SCHEDULE, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_returns_the_schedule_and_its_next_opening(api: Api) -> None:
    """POST answers 201 with the stored schedule, its Location and its next opening."""
    response = await api.client.post("/api/v1/schedules", json=SCHEDULE)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/schedules/{body['id']}"
    assert body["customer"] == {"name": "Condominio Aurora", "email": "condominio@example.it"}
    assert {k: body[k] for k in ("interval", "every", "day_rule", "first_date", "until",
                                 "count", "lead_days", "assignees", "active", "request_type",
                                 "next_occurrence_on", "next_opening_on", "recent")} == {
        "interval": "monthly", "every": 1, "day_rule": "same_day", "first_date": "2026-03-31",
        "until": None, "count": None, "lead_days": 3, "assignees": [MARCO], "active": True,
        "request_type": "service_schedule", "next_occurrence_on": "2026-03-31",
        "next_opening_on": "2026-03-28", "recent": []}
    listed = (await api.client.get("/api/v1/schedules")).json()
    assert [s["id"] for s in listed["items"]] == [body["id"]]
    assert (await api.client.get(f"/api/v1/schedules/{body['id']}")).json() == body


@pytest.mark.parametrize(("changes", "message"), [
    ({"interval": "daily"}, "interval: "),
    ({"first_date": "31/03/2026"}, "first_date: "),
    ({"lead_days": -1}, "lead_days: "),
    ({"every": 0}, "every: "),
    ({"until": "2026-01-01"}, "until: is before first_date"),
    ({"until": "2026-12-31", "count": 4}, "until: give either until or count"),
    ({"interval": "weekly", "day_rule": "last_day"}, "day_rule: "),
    ({"assignees": ["nobody@firm.test"]}, "assignees: no employee with address"),
    ({"assignees": ["not an address"]}, "assignees: "),
    ({"customer_email": "nobody"}, "customer_email: "),
    ({"colour": "red"}, "colour: unknown field"),
])
async def test_invalid_schedules_are_refused_naming_the_field(
        api: Api, changes: dict[str, Any], message: str) -> None:
    """Each invalid body is a 422 whose message names the field; nothing is stored."""
    response = await api.client.post("/api/v1/schedules", json={**SCHEDULE, **changes})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
    assert await api.rows("SELECT count(*) FROM schedules") == [(0,)]


async def test_missing_required_fields_and_no_token(api: Api) -> None:
    """lead_days is required; without a bearer token the API answers 401; unknown ids 404."""
    body = {k: v for k, v in SCHEDULE.items() if k != "lead_days"}
    response = await api.client.post("/api/v1/schedules", json=body)
    assert (response.status_code, response.json()["error"]) == (422, "lead_days: is required")
    assert (await api.anonymous.get("/api/v1/schedules")).status_code == 401
    assert (await api.client.get("/api/v1/schedules/99")).status_code == 404
    assert (await api.client.get("/api/v1/schedules/99/occurrences")).status_code == 404
    assert (await api.client.patch("/api/v1/schedules/99", json={"active": False})
            ).status_code == 404


async def test_occurrences_preview_shows_opened_ones(api: Api, store: Store,
                                                     settings: Settings,
                                                     clock: FakeClock) -> None:
    """The preview lists dates, opening dates and the intervention of opened ones."""
    schedule = await create(api, first_date="2026-01-31")
    preview = (await api.client.get(
        f"/api/v1/schedules/{schedule['id']}/occurrences?count=3")).json()
    assert preview == [
        {"date": "2026-03-31", "opens_on": "2026-03-28", "intervention_number": None},
        {"date": "2026-04-30", "opens_on": "2026-04-27", "intervention_number": None},
        {"date": "2026-05-31", "opens_on": "2026-05-28", "intervention_number": None}]
    clock.advance(timedelta(days=26))                       # 28 March
    result = await Scheduler(store, settings, clock, reply_keys=KEYS,
                             on_outbox=lambda: None).tick()
    assert result.opened == 1
    preview = (await api.client.get(
        f"/api/v1/schedules/{schedule['id']}/occurrences?count=2")).json()
    [(number,)] = await api.rows("SELECT number FROM interventions")
    assert [p["intervention_number"] for p in preview] == [number, None]
    assert (await api.client.get(f"/api/v1/schedules/{schedule['id']}/occurrences?count=0")
            ).status_code == 422


async def test_patch_pauses_resumes_and_edits_without_reopening(
        api: Api, store: Store, settings: Settings, clock: FakeClock) -> None:
    """PATCH pauses, resumes and edits; an opened occurrence never opens again."""
    schedule = await create(api, first_date="2026-03-04", assignees=[])
    url = f"/api/v1/schedules/{schedule['id']}"
    sched = Scheduler(store, settings, clock, reply_keys=KEYS, on_outbox=lambda: None)
    assert (await sched.tick()).opened == 1                  # 4 March, opened late on 2 March
    paused = await api.client.patch(url, json={"active": False})
    assert (paused.status_code, paused.json()["active"]) == (200, False)
    clock.advance(timedelta(days=31))                        # 2 April: 4 April would be due
    assert (await sched.tick()).opened == 0
    edited = await api.client.patch(url, json={"active": True, "lead_days": 40,
                                               "subject": "Caldaia"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["next_occurrence_on"] == "2026-04-04"
    assert (await sched.tick()).opened == 2                  # 4 April and 4 May
    assert [r["date"] for r in (await api.client.get(url)).json()["recent"]] == [
        "2026-05-04", "2026-04-04", "2026-03-04"]
    cleared = await api.client.patch(url, json={"count": 3})
    assert cleared.json()["next_occurrence_on"] is None      # the 3rd was the last
    refused = await api.client.patch(url, json={"subject": None})
    assert refused.status_code == 422
    assert (await api.client.patch(url, json={})).status_code == 422
