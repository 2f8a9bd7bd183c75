"""Action-sequence definitions through the JSON API of a running daemon: created with
numbered steps for an employee or a team, listed, and refused when they name nobody."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.tickets.cases import add_employee

LUCA = "luca@firm.test"

MAINTENANCE = {
    "code": "MAN-CALDAIA", "description": "Annual boiler maintenance",
    "notes": "Ask for the last report", "trigger_request_type": "service_schedule",
    "steps": [
        {"team": "Caldaie", "action": "call", "expected_hours": 0.25,
         "notes": "Agree a day", "postpone_days": 2},
        {"employee_email": "Luca@Firm.test", "action": "visit", "expected_hours": 2,
         "notes": "", "postpone_days": 0},
        {"employee_email": LUCA, "action": "send the quote for the flue"},
    ],
}


@pytest.fixture
async def api(tmp_path: Path, relay: Controller) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as daemon:
        store = daemon.running.store
        now = SystemClock().now()
        token = await store.write(partial(create_token, name="test", now=now))
        await store.write(partial(add_employee, email=LUCA, name="Luca Bianchi",
                                  language="it", now=now))
        async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1", headers={
                "Authorization": f"Bearer {token}"}) as client:
            team = await client.post("/teams", json={"name": "Caldaie", "members": [LUCA]})
            assert team.status_code == 201, team.text
            yield client


async def test_a_sequence_is_created_with_numbered_steps_and_listed(
        api: httpx.AsyncClient) -> None:
    """POST answers the sequence with steps numbered 1..3, assignees resolved (a team
    by name, an employee by address, lower-cased), defaults filled; GET lists it."""
    created = await api.post("/sequences", json=MAINTENANCE)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    assert (body["code"], body["trigger_request_type"]) == ("MAN-CALDAIA", "service_schedule")
    assert [(s["number"], s["team"], s["employee_email"], s["action"], s["expected_hours"],
             s["postpone_days"]) for s in body["steps"]] == [
        (1, "Caldaie", None, "call", 0.25, 2), (2, None, LUCA, "visit", 2.0, 0),
        (3, None, LUCA, "send the quote for the flue", None, 0)]
    listed = (await api.get("/sequences")).json()
    assert listed == [body]


async def test_bad_sequences_are_refused_with_the_reason(api: httpx.AsyncClient) -> None:
    """A step naming both or neither assignee is 422, an unknown team or request type
    404, a second sequence with the same code 409; nothing half-stored."""
    both = {**MAINTENANCE, "steps": [{"team": "Caldaie", "employee_email": LUCA,
                                      "action": "call"}]}
    neither = {**MAINTENANCE, "steps": [{"action": "call"}]}
    for body in (both, neither):
        refused = await api.post("/sequences", json=body)
        assert refused.status_code == 422
        assert "exactly one of employee_email and team" in refused.text
    unknown_team = {**MAINTENANCE, "steps": [{"team": "Nessuna", "action": "call"}]}
    assert (await api.post("/sequences", json=unknown_team)).status_code == 404
    unknown_type = {**MAINTENANCE, "trigger_request_type": "nothing_like_it"}
    assert (await api.post("/sequences", json=unknown_type)).status_code == 404
    assert (await api.get("/sequences")).json() == []
    assert (await api.post("/sequences", json=MAINTENANCE)).status_code == 201
    assert (await api.post("/sequences", json=MAINTENANCE)).status_code == 409
    assert len((await api.get("/sequences")).json()) == 1
