"""Interventions after creation, over the JSON API on a real socket: created with the
archive's records, edited with every change on the thread, put on hold and resumed;
employees retired and brought back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from api_harness import Api, running_api
from postgres_server import PostgresCluster

from nexusmail.clock import FakeClock, iso
from nexusmail.config import Settings
from nexusmail.storage.connections import WriteTx
from nexusmail.storage.pg_store import PgStore
from nexusmail.tickets.store import Store

REQUEST = {"customer_email": "info@rossi-srl.it", "customer_name": "Rossi Srl",
           "subject": "Caldaia in blocco", "description": "Chiamata del cliente."}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"storage": {"data_dir": str(tmp_path)},
                                    "mail": {"support_addresses": ["support@firm.test"]}})


def seed(tx: WriteTx) -> None:
    """Rossi (its site 1 with machine AB1234 at it, contact mario@), Bianchi (site 2)."""
    now = iso(FakeClock().now())
    # Ids come from insertion order, as on an empty store they do on both stores (a
    # PostgreSQL identity does not move past an id given by hand, SQLite's rowid does).
    tx.execute("INSERT INTO customers (name, email, verified, created_at)"
               " VALUES ('Rossi Srl', 'info@rossi-srl.it', 1, ?)", (now,))
    tx.execute("INSERT INTO customers (name, email, verified, created_at)"
               " VALUES ('Bianchi', 'ufficio@bianchi.it', 1, ?)", (now,))
    tx.execute("INSERT INTO contacts (customer_id, name, email, phone, verified,"
               " created_at) VALUES (1, 'Mario', 'mario@rossi-srl.it', '333 1', 1, ?)",
               (now,))
    for site_id, customer_id in ((1, 1), (2, 2), (3, 1)):
        tx.execute("INSERT INTO sites (customer_id, name, address, created_at, updated_at)"
                   " VALUES (?, ?, 'Via Po 1', ?, ?)",
                   (customer_id, f"Sede {site_id}", now, now))
    tx.execute("INSERT INTO equipment (customer_id, site_id, serial, model, created_at,"
               " updated_at) VALUES (1, 1, 'AB1234', 'ecoTEC', ?, ?)", (now, now))
    tx.execute("INSERT INTO employees (email, name, language, created_at)"
               " VALUES ('luca@firm.test', 'Luca', 'it', ?)", (now,))


@pytest.fixture
async def api(store: Store, settings: Settings, clock: FakeClock) -> AsyncIterator[Api]:
    await store.write(seed)
    async with running_api(store, settings, clock, reply_keys=[b"k" * 32]) as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
async def both(request: pytest.FixtureRequest, store: Store, settings: Settings,
               clock: FakeClock) -> AsyncIterator[Api]:
    """The API over SQLite, then over PostgreSQL, with the same records."""
    if request.param == "sqlite":
        await store.write(seed)
        async with running_api(store, settings, clock, reply_keys=[b"k" * 32]) as running:
            yield running
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    url = cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    async with PgStore(url) as pg:
        await pg.write(seed)
        async with running_api(cast(Store, pg), settings, clock,
                               reply_keys=[b"k" * 32]) as running:
            yield running


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    response = await api.client.post("/api/v1/interventions", json={**REQUEST, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_created_with_contact_site_machine_and_origin(api: Api) -> None:
    """POST takes contact_email, equipment_serial (its site comes along), requested_at,
    channel and request_type; the detail shows them."""
    case = await create(api, contact_email="Mario@Rossi-SRL.it", equipment_serial="ab1234",
                        requested_at="2026-03-02T09:15:00", channel="phone",
                        request_type="repair")
    assert case["contact"]["id"] == 1
    assert case["equipment"]["serial"] == "AB1234"
    assert case["site"]["id"] == 1
    assert (case["channel"], case["requested_at"], case["request_type"]) == (
        "phone", "2026-03-02T09:15:00", "repair")


@pytest.mark.parametrize(("fields", "error"), [
    ({"site_id": 2}, "site_id: site 2 is not a site of customer 1"),
    ({"equipment_serial": "ZZ999"}, "equipment_serial: customer 1 has no machine ZZ999"),
    ({"contact_email": "x@bianchi.it", "customer_email": "ufficio@bianchi.it"}, None),
    ({"channel": "fax"}, "channel"),
    ({"requested_at": "ieri"}, "requested_at"),
])
async def test_creation_checks_the_links(api: Api, fields: dict[str, Any],
                                         error: str | None) -> None:
    """A site or machine of another customer is refused with 422 and nothing is created;
    a new contact address becomes a contact of the case's customer."""
    response = await api.client.post("/api/v1/interventions", json={**REQUEST, **fields})
    if error is None:
        assert response.status_code == 201
        assert response.json()["contact"]["email"] == "x@bianchi.it"
        assert response.json()["customer"]["id"] == 2
        return
    assert response.status_code == 422
    assert error in response.json()["error"]
    assert await api.rows("SELECT count(*) FROM interventions") == [(0,)]


async def test_patch_writes_each_change_on_the_thread(both: Api) -> None:
    """PATCH changes type, priority, period, subject, contact, site and machine; one
    thread entry names every change, old and new, and who made it. A contact of another
    customer is refused and changes nothing."""
    number = (await create(both))["number"]
    response = await both.client.patch(f"/api/v1/interventions/{number}", json={
        "request_type": "service_schedule", "priority": "urgent",
        "desired_from": "2026-03-05", "desired_to": "2026-03-06", "subject": "Caldaia ferma",
        "contact_email": "mario@rossi-srl.it", "equipment_serial": "AB1234"})
    assert response.status_code == 200, response.text
    case = response.json()
    assert (case["request_type"], case["priority"], case["subject"]) == (
        "service_schedule", "urgent", "Caldaia ferma")
    assert (case["desired_from"], case["desired_to"]) == ("2026-03-05", "2026-03-06")
    assert (case["contact"]["id"], case["site"]["id"], case["equipment"]["id"]) == (1, 1, 1)
    entry = case["messages"][-1]
    assert entry["author"] == "api:tests"
    assert entry["extra"]["changes"]["priority"] == ["normal", "urgent"]
    assert "priority: normal -> urgent" in entry["body_text"]
    assert "site: (none) -> 1" in entry["body_text"]
    moved = await both.client.patch(f"/api/v1/interventions/{number}",
                                   json={"site_id": 3, "equipment_serial": None})
    assert moved.json()["site"]["id"] == 3
    assert moved.json()["equipment"] is None
    refused = await both.client.patch(f"/api/v1/interventions/{number}",
                                     json={"site_id": 2})
    assert refused.status_code == 422
    again = await both.client.patch(f"/api/v1/interventions/{number}", json={"priority": "urgent"})
    assert len(again.json()["messages"]) == len(moved.json()["messages"])


async def test_hold_and_resume(both: Api) -> None:
    """hold puts an open case on hold with its reason (thread and status_reason), the
    list filters it by status, a second hold is 409, reopen resumes it."""
    number = (await create(both))["number"]
    await create(both)
    held = await both.client.post(f"/api/v1/interventions/{number}/hold",
                                 json={"reason": "In attesa del ricambio"})
    assert held.status_code == 200
    body = held.json()
    assert (body["status"], body["status_reason"]) == ("on_hold", "In attesa del ricambio")
    assert body["messages"][-1]["body_text"] == "In attesa del ricambio"
    assert body["messages"][-1]["extra"] == {"status": "on_hold"}
    listed = (await both.client.get("/api/v1/interventions?status=on_hold")).json()
    assert [item["number"] for item in listed["items"]] == [number]
    assert (await both.client.post(f"/api/v1/interventions/{number}/hold",
                                  json={"reason": "x"})).status_code == 409
    resumed = (await both.client.post(f"/api/v1/interventions/{number}/reopen")).json()
    assert (resumed["status"], resumed["status_reason"]) == ("open", "")
    assert (await both.client.post(f"/api/v1/interventions/{number}/hold",
                                  json={"reason": ""})).status_code == 422


async def test_a_retired_employee_cannot_be_assigned(api: Api) -> None:
    """PATCH employees/{email} {active: false} retires them: an assignment is 409 and
    queues no mail; {active: true} brings them back."""
    number = (await create(api))["number"]
    retired = await api.client.patch("/api/v1/employees/Luca@firm.test", json={"active": False})
    assert retired.status_code == 200
    assert retired.json()["active"] is False
    refused = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                    json={"employee_email": "luca@firm.test"})
    assert refused.status_code == 409
    assert await api.rows("SELECT count(*) FROM outbox WHERE kind = 'assignment'") == [(0,)]
    back = await api.client.patch("/api/v1/employees/luca@firm.test", json={"active": True})
    assert back.json()["active"] is True
    assigned = await api.client.post(f"/api/v1/interventions/{number}/assignments",
                                     json={"employee_email": "luca@firm.test"})
    assert assigned.status_code == 201
    missing = await api.client.patch("/api/v1/employees/x@firm.test", json={"active": True})
    assert missing.status_code == 404


async def test_a_request_type_of_the_list_brings_its_defaults(api: Api) -> None:
    """A type of the list gives a new case its default priority and default assignees
    when the request names neither; a priority or assignees given win; free text as
    a type changes nothing."""
    def add_type(tx: WriteTx) -> None:
        tx.execute("INSERT INTO request_types (code, name_en, default_priority)"
                   " VALUES ('leak', 'Leak', 'urgent')")
        tx.execute("INSERT INTO request_type_assignees (request_type, employee_id)"
                   " SELECT 'leak', id FROM employees WHERE email = 'luca@firm.test'")

    await api.store.write(add_type)
    case = await create(api, request_type="leak")
    assert case["priority"] == "urgent"
    assert [a["employee_email"] for a in case["assignments"]] == ["luca@firm.test"]
    given = await create(api, request_type="leak", priority="low", assignees=[])
    assert given["priority"] == "low"
    free = await create(api, request_type="perdita in cantina")
    assert (free["priority"], free["assignments"]) == ("normal", [])


async def test_employee_details_and_absences_are_edited_by_patch(api: Api) -> None:
    """PATCH changes only the fields given; `absences` replaces the list (sorted by
    date) and comes back on GET; a span ending before it starts, an unknown language
    or an unknown field is a 422 naming it, and nothing changes."""
    changed = await api.client.patch("/api/v1/employees/luca@firm.test", json={
        "name": "Luca Bianchi", "language": "ro",
        "absences": [{"from": "2026-08-10", "to": "2026-08-21", "reason": "ferie"},
                     {"from": "2026-03-02", "to": "2026-03-02", "reason": "corso"}]})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["language"], body["active"]) == ("Luca Bianchi", "ro", True)
    assert body["absences"] == [
        {"from": "2026-03-02", "to": "2026-03-02", "reason": "corso"},
        {"from": "2026-08-10", "to": "2026-08-21", "reason": "ferie"}]
    assert (await api.client.get("/api/v1/employees/luca@firm.test")).json() == body
    for bad, field in (({"absences": [{"from": "2026-05-02", "to": "2026-05-01"}]}, "absences"),
                       ({"language": "de"}, "language"), ({"colour": "red"}, "colour")):
        refused = await api.client.patch("/api/v1/employees/luca@firm.test", json=bad)
        assert refused.status_code == 422, bad
        assert field in refused.json()["error"]
    cleared = await api.client.patch("/api/v1/employees/luca@firm.test", json={"absences": []})
    assert cleared.json()["absences"] == []
    assert cleared.json()["language"] == "ro"
    assert (await api.client.get("/api/v1/employees/nobody@firm.test")).status_code == 404
