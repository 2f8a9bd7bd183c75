"""Contracts entered and changed from the customer card (plain HTTP against the real
daemon, CSRF like every form) and replaced through the JSON API: the card shows them in
the operator's language, a refused value comes back naming the field, a contract
changed later moves the deadlines of the customer's open cases, and a contract lists
the customer's machines and service schedules it covers (only that customer's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from admin_harness import add_operator, csrf_of, customer_mail, logged_in
from api_harness import running_api
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.tickets.store import Store

OPERATOR = "anna@firm.test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # a Monday, 10:00 in Rome
ROUND_THE_CLOCK = {"working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                   "working_hours": "00:00-24:00"}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", calendar=ROUND_THE_CLOCK,
                             sla={"response_hours": 8, "sweep_interval_s": 0.1})
    async with running_daemon(settings, clock=FakeClock(START)) as running:
        await add_operator(running, OPERATOR)
        yield running


async def post_form(client: httpx.AsyncClient, page_path: str, action: str,
                    data: dict[str, str],
                    headers: dict[str, str] | None = None) -> httpx.Response:
    token = csrf_of((await client.get(page_path)).text)
    return await client.post(action, data={"csrf_token": token, **data}, headers=headers)


async def response_due(daemon: Daemon, wanted: str) -> None:
    for _ in range(250):
        if await daemon.query("SELECT 1 FROM interventions WHERE response_due = ?", wanted):
            return
        await asyncio.sleep(0.02)
    found = await daemon.query("SELECT response_due FROM interventions")
    raise AssertionError(f"response due {found}, never {wanted}")


async def test_a_contract_is_added_and_edited_from_the_card(daemon: Daemon) -> None:
    """The card's form adds a contract (hours as typed, fractions with a comma too) and
    its edit form changes it (unticking its machine); the open case's deadline
    follows each change; a contract
    ending before it starts is refused with the field named, in Italian on an Italian
    page; a second contract with the same code is a 409."""
    assert (await daemon.send(customer_mail("Caldaia", "In blocco.")))[0] == 250
    await response_due(daemon, "2026-03-02T17:00:00+00:00")   # the [sla] default, 8 h
    [(customer,)] = await daemon.query("SELECT customer_id FROM interventions")
    card_path = f"/customers/{customer}"
    async with logged_in(daemon, OPERATOR) as client:
        assert (await post_form(client, card_path, f"{card_path}/equipment", {
            "serial": "AB-1234X"})).status_code == 303
        [(machine,)] = await daemon.query("SELECT id FROM equipment")
        added = await post_form(client, card_path, f"{card_path}/contracts", {
            "code": "GOLD-1", "type": "maintenance", "valid_from": "2026-01-01",
            "valid_to": "", "response_hours": "1,5", "resolution_hours": "",
            "prepaid_hours": "20", "notes": "Caldaie", "equipment_ids": str(machine)})
        assert added.status_code == 303, added.text
        await response_due(daemon, "2026-03-02T10:30:00+00:00")
        card = (await client.get(card_path)).text
        assert "Contract added." in card
        for shown in ("GOLD-1", "maintenance", "<td>20 h</td>"):
            assert shown in card
        assert 'name="response_hours" min="0" step="any" value="1.5"' in card
        assert f'<a href="/equipment/{machine}">AB-1234X</a>' in card
        assert f'name="equipment_ids" value="{machine}" checked' in card
        [(contract,)] = await daemon.query("SELECT id FROM contracts")

        saved = await post_form(client, card_path, f"{card_path}/contracts/{contract}", {
            "code": "GOLD-1", "type": "maintenance", "valid_from": "2026-01-01",
            "valid_to": "2026-12-31", "response_hours": "2", "resolution_hours": "",
            "prepaid_hours": "20", "notes": "Caldaie e bruciatori"})
        assert saved.status_code == 303, saved.text
        await response_due(daemon, "2026-03-02T11:00:00+00:00")
        assert await daemon.query(
            "SELECT valid_to, response_hours, notes FROM contracts") == [
            ("2026-12-31", 2.0, "Caldaie e bruciatori")]
        assert await daemon.query("SELECT count(*) FROM contract_equipment") == [(0,)]

        refused = await post_form(client, card_path, f"{card_path}/contracts/{contract}", {
            "code": "GOLD-1", "valid_from": "2026-06-01", "valid_to": "2026-01-01"},
            headers={"accept-language": "it"})
        assert refused.status_code == 422
        assert "Valido fino al: è precedente a valid_from" in refused.text
        twice = await post_form(client, card_path, f"{card_path}/contracts", {
            "code": "GOLD-1", "valid_from": "2027-01-01"})
        assert twice.status_code == 409
        stranger = await post_form(client, card_path, f"{card_path}/contracts/999", {
            "code": "X", "valid_from": "2027-01-01"})
        assert stranger.status_code == 422
    assert await daemon.query("SELECT count(*) FROM contracts") == [(1,)]


async def test_the_api_replaces_a_contract(store: Store, tmp_path: Path) -> None:
    """PUT replaces every field of one of the customer's contracts; another customer's
    contract is a 404 there; a refused value is a 422 naming the field. A contract
    names the customer's machines and schedules, shown in its JSON; another
    customer's machine is refused; a PUT without them unlinks them."""
    settings = Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"}})
    async with running_api(store, settings, FakeClock(START)) as api:
        customers = []
        for name in ("Rossi", "Bianchi"):
            made = await api.client.post("/api/v1/customers", json={"name": name})
            assert made.status_code == 201, made.text
            customers.append(made.json()["id"])
        rossi, bianchi = customers
        body = {"code": "K1", "valid_from": "2026-01-01", "prepaid_hours": 10}
        made = await api.client.post(f"/api/v1/customers/{rossi}/contracts", json=body)
        contract = made.json()["id"]
        replaced = await api.client.put(f"/api/v1/customers/{rossi}/contracts/{contract}",
                                        json={"code": "K1-bis", "valid_from": "2026-02-01",
                                              "response_hours": 4})
        assert replaced.status_code == 200, replaced.text
        got = replaced.json()
        assert (got["code"], got["valid_from"], got["response_hours"],
                got["prepaid_hours"], got["remaining_hours"]) == ("K1-bis", "2026-02-01",
                                                                  4.0, None, None)
        elsewhere = await api.client.put(
            f"/api/v1/customers/{bianchi}/contracts/{contract}", json=body)
        assert elsewhere.status_code == 404
        bad = await api.client.put(f"/api/v1/customers/{rossi}/contracts/{contract}",
                                   json={**body, "valid_to": "2025-01-01"})
        assert bad.status_code == 422
        assert bad.json()["error"].startswith("valid_to:")

        machine = await api.client.post("/api/v1/equipment", json={
            "customer_id": rossi, "serial": "AB-1"})
        assert machine.status_code == 201, machine.text
        other = await api.client.post("/api/v1/equipment", json={
            "customer_id": bianchi, "serial": "ZZ-9"})
        plan = await api.client.post("/api/v1/schedules", json={
            "customer_email": "info@rossi.test", "subject": "Manutenzione caldaia",
            "interval": "yearly", "first_date": "2026-09-01", "lead_days": 0})
        assert plan.status_code == 201, plan.text
        # The schedule API names its customer by address (a new one here): move it.
        await api.store.write(lambda tx: tx.execute(
            "UPDATE schedules SET customer_id = ?", (rossi,)))
        linked = await api.client.post(f"/api/v1/customers/{rossi}/contracts", json={
            "code": "K2", "valid_from": "2026-01-01",
            "equipment_ids": [machine.json()["id"]], "schedule_ids": [plan.json()["id"]]})
        assert linked.status_code == 201, linked.text
        assert (linked.json()["equipment_ids"], linked.json()["schedule_ids"]) == (
            [machine.json()["id"]], [plan.json()["id"]])
        listed = await api.client.get(f"/api/v1/customers/{rossi}/contracts")
        k2 = next(k for k in listed.json()["items"] if k["code"] == "K2")
        assert k2["schedule_ids"] == [plan.json()["id"]]
        refused = await api.client.post(f"/api/v1/customers/{rossi}/contracts", json={
            "code": "K3", "valid_from": "2026-01-01",
            "equipment_ids": [other.json()["id"]]})
        assert refused.status_code == 422
        assert refused.json()["error"].startswith("equipment_ids:")
        unlinked = await api.client.put(
            f"/api/v1/customers/{rossi}/contracts/{linked.json()['id']}",
            json={"code": "K2", "valid_from": "2026-01-01"})
        assert (unlinked.json()["equipment_ids"], unlinked.json()["schedule_ids"]) == ([], [])


async def test_a_schedule_names_the_contract_that_lists_it(store: Store,
                                                           tmp_path: Path) -> None:
    """The schedule JSON (list and detail) carries `contract_id`: null while no
    contract lists the schedule, the contract's id once one does, null again after
    the contract drops it."""
    settings = Settings.model_validate({
        "storage": {"data_dir": str(tmp_path)},
        "mail": {"support_addresses": ["support@firm.test"], "company_name": "Firm"}})
    async with running_api(store, settings, FakeClock(START)) as api:
        made = await api.client.post("/api/v1/customers", json={"name": "Rossi"})
        rossi = made.json()["id"]
        plan = await api.client.post("/api/v1/schedules", json={
            "customer_email": "info@rossi.test", "subject": "Manutenzione caldaia",
            "interval": "yearly", "first_date": "2026-09-01", "lead_days": 0})
        assert plan.status_code == 201, plan.text
        assert plan.json()["contract_id"] is None
        plan_id = plan.json()["id"]
        # The schedule API names its customer by address (a new one here): move it.
        await api.store.write(lambda tx: tx.execute(
            "UPDATE schedules SET customer_id = ?", (rossi,)))

        async def contract_of_plan() -> tuple[object, object]:
            detail = await api.client.get(f"/api/v1/schedules/{plan_id}")
            listed = await api.client.get("/api/v1/schedules")
            item = next(s for s in listed.json()["items"] if s["id"] == plan_id)
            return detail.json()["contract_id"], item["contract_id"]

        linked = await api.client.post(f"/api/v1/customers/{rossi}/contracts", json={
            "code": "K1", "valid_from": "2026-01-01", "schedule_ids": [plan_id]})
        assert linked.status_code == 201, linked.text
        contract = linked.json()["id"]
        assert await contract_of_plan() == (contract, contract)
        await api.client.put(f"/api/v1/customers/{rossi}/contracts/{contract}",
                             json={"code": "K1", "valid_from": "2026-01-01"})
        assert await contract_of_plan() == (None, None)
