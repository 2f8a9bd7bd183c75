"""Activities and timesheets through the JSON API, over a real socket with a real store
(tests/support/api_harness.py); the CSV export is parsed as a spreadsheet would."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, running_api

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.store import Store

SUPPORT = "support@firm.test"
MARCO, ION = "marco@firm.test", "ion@firm.test"


def _settings(tmp_path: Path, **sections: Any) -> Settings:
    return Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": [SUPPORT], "company_name": "Firm"}, **sections})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    def employees(tx: sqlite3.Connection) -> None:
        add_employee(tx, email=MARCO, name="Marco Bianchi", language="it", now=clock.now())
        add_employee(tx, email=ION, name="Ion Popescu", language="ro", now=clock.now())
    await store.write(employees)
    async with running_api(store, settings, clock) as running:
        yield running


async def _open(api: Api, customer: str = "rossi@example.it", name: str = "Rossi Srl",
                **extra: Any) -> int:
    response = await api.client.post("/api/v1/interventions", json={
        "customer_email": customer, "customer_name": name, "subject": "Caldaia",
        "description": "Non parte.", **extra})
    assert response.status_code == 201, response.text
    number: int = response.json()["number"]
    return number


async def _add(api: Api, number: int, **body: Any) -> Any:
    return await api.client.post(f"/api/v1/interventions/{number}/activities", json=body)


async def test_operators_add_activities_of_every_kind(api: Api) -> None:
    """A call, travel and twenty minutes of work: exact hours, on the list and the thread."""
    number = await _open(api)
    call = await _add(api, number, employee_email=MARCO, kind="phone", hours=0.5,
                      text="Chiamato il cliente", date="2026-03-02")
    assert call.status_code == 201, call.text
    assert {k: call.json()[k] for k in ("employee_email", "kind", "date", "hours",
                                        "travel_hours", "text", "attachments")} == {
        "employee_email": MARCO, "kind": "phone", "date": "2026-03-02", "hours": 0.5,
        "travel_hours": None, "text": "Chiamato il cliente", "attachments": []}
    travel = await _add(api, number, employee_email=ION.upper(), kind="travel", hours=1)
    assert (travel.json()["hours"], travel.json()["travel_hours"]) == (None, 1.0)
    work = await _add(api, number, employee_email=MARCO, kind="work", hours=20 / 60)
    assert work.json()["hours"] == pytest.approx(1 / 3)
    detail = (await api.client.get(f"/api/v1/interventions/{number}")).json()
    assert [a["kind"] for a in detail["activities"]] == ["phone", "travel", "work"]
    entries = [m for m in detail["messages"] if m["kind"] == "activity"]
    assert [m["body_text"] for m in entries] == ["Chiamato il cliente", "", ""]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"employee_email": "nobody@firm.test", "kind": "work", "hours": 1}, 422, "employee_email"),
    ({"employee_email": MARCO, "kind": "coffee", "hours": 1}, 422, "kind"),
    ({"employee_email": MARCO, "kind": "work", "hours": 0}, 422, "hours"),
    ({"employee_email": MARCO, "kind": "work", "hours": 25}, 422, "hours"),
    ({"employee_email": MARCO, "kind": "work", "hours": 1, "date": "2026-13-01"}, 422, "date"),
])
async def test_bad_activities_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    """Unknown employee or kind, hours out of range, a bad date: 422 naming the field."""
    number = await _open(api)
    response = await _add(api, number, **body)
    assert response.status_code == status
    assert field in response.json()["error"]


async def test_activities_on_a_missing_or_closed_case(api: Api) -> None:
    """404 for an unknown intervention, 409 for a closed one."""
    assert (await _add(api, 99, employee_email=MARCO, hours=1)).status_code == 404
    number = await _open(api)
    assert (await api.client.post(f"/api/v1/interventions/{number}/close")).status_code == 200
    assert (await _add(api, number, employee_email=MARCO, hours=1)).status_code == 409


async def test_timesheet_filters(api: Api) -> None:
    """By employee, by customer (id, address or name) and by an inclusive date range."""
    rossi = await _open(api)
    bianchi = await _open(api, customer="info@bianchi.ro", name="Bianchi SRL")
    for number, who, day, hours in [(rossi, MARCO, "2026-03-01", 1), (rossi, ION, "2026-03-02", 2),
                                    (bianchi, MARCO, "2026-03-03", 3)]:
        assert (await _add(api, number, employee_email=who, hours=hours,
                           date=day)).status_code == 201

    async def hours(**params: str) -> list[float]:
        response = await api.client.get("/api/v1/activities", params=params)
        assert response.status_code == 200, response.text
        return [item["hours"] for item in response.json()["items"]]

    assert await hours() == [1.0, 2.0, 3.0]
    assert await hours(employee=MARCO) == [1.0, 3.0]
    assert await hours(customer="bianchi") == [3.0]
    assert await hours(customer="rossi@example.it") == [1.0, 2.0]
    assert await hours(**{"from": "2026-03-02", "to": "2026-03-03"}) == [2.0, 3.0]
    bad = await api.client.get("/api/v1/activities", params={"from": "March"})
    assert bad.status_code == 422
    assert "from" in bad.json()["error"]


async def test_timesheet_csv_opens_as_the_right_columns(api: Api) -> None:
    """format=csv and Accept: text/csv give UTF-8 with a BOM, ";" between columns and a
    decimal comma; parsed back, every column holds what the JSON says."""
    number = await _open(api, name="Caffè Ştefan; \"Nord\"")
    await _add(api, number, employee_email=MARCO, hours=20 / 60, text="=SUM(A1) riparato",
               date="2026-03-04")
    await _add(api, number, employee_email=ION, kind="travel", hours=1.5, date="2026-03-04")
    by_param = await api.client.get("/api/v1/activities", params={"format": "csv"})
    by_accept = await api.client.get("/api/v1/activities", headers={"Accept": "text/csv"})
    assert by_param.content == by_accept.content
    assert by_param.headers["content-type"].startswith("text/csv")
    assert "attachment" in by_param.headers["content-disposition"]
    raw = by_param.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert list(rows[0]) == ["date", "employee_email", "customer", "intervention", "subject",
                             "kind", "hours", "travel_hours", "work_minutes",
                             "travel_minutes", "text", "activity_id"]
    assert [(r["date"], r["employee_email"], r["customer"], r["intervention"], r["kind"],
             r["hours"], r["travel_hours"], r["work_minutes"], r["travel_minutes"])
            for r in rows] == [
        ("2026-03-04", MARCO, "Caffè Ştefan; \"Nord\"", str(number), "work", "0,3333", "",
         "20", ""),
        ("2026-03-04", ION, "Caffè Ştefan; \"Nord\"", str(number), "travel", "", "1,5",
         "", "90"),
    ]
    assert rows[0]["text"] == "'=SUM(A1) riparato", "a formula is never run by Excel"


async def test_csv_delimiter_is_configurable(store: Store, tmp_path: Path,
                                             clock: FakeClock) -> None:
    """`[export] csv_delimiter = ","` gives commas between columns and decimal points."""
    settings = _settings(tmp_path, export={"csv_delimiter": ","})
    await store.write(lambda tx: add_employee(tx, email=MARCO, name="Marco", language="it",
                                              now=clock.now()))
    async with running_api(store, settings, clock) as api:
        number = await _open(api)
        await _add(api, number, employee_email=MARCO, hours=2.5)
        text = (await api.client.get("/api/v1/activities?format=csv")).content.decode("utf-8-sig")
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["hours"] == "2.5"


async def test_notify_customer_on_resolve_is_kept_per_intervention(api: Api) -> None:
    """POST /interventions takes notify_customer_on_resolve; absent, it follows the config."""
    asked = await _open(api, notify_customer_on_resolve=True)
    default = await _open(api)
    for number, expected in ((asked, True), (default, None)):
        detail = (await api.client.get(f"/api/v1/interventions/{number}")).json()
        assert detail["notify_customer_on_resolve"] is expected
    bad = await api.client.post("/api/v1/interventions", json={
        "customer_email": "x@example.it", "subject": "s", "description": "d",
        "notify_customer_on_resolve": "yes"})
    assert bad.status_code == 422


async def test_notify_customer_on_resolve_is_changed_by_patch(api: Api) -> None:
    """PATCH turns the closing mail on and back to the configured default (null), and
    the change is written on the thread."""
    number = await _open(api)
    on = await api.client.patch(f"/api/v1/interventions/{number}",
                                json={"notify_customer_on_resolve": True})
    assert on.status_code == 200, on.text
    assert on.json()["notify_customer_on_resolve"] is True
    back = await api.client.patch(f"/api/v1/interventions/{number}",
                                  json={"notify_customer_on_resolve": None})
    assert back.json()["notify_customer_on_resolve"] is None
    notes = [m["body_text"] for m in back.json()["messages"] if m["kind"] == "note"]
    assert any("closing mail to the customer" in text for text in notes)
