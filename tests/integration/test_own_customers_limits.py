"""The own-customers limit beyond lists and cards, over real sockets against the daemon:
a limited operator's timesheets (page, CSV and API) hold only work on their customers,
and they cannot merge one of their customers into someone else's (the other customer
answers as if it did not exist, and nothing moves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import add_employees, add_operator, csrf_of, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

ADMIN, LIMITED = "boss@firm.test", "own@firm.test"


@dataclass
class Office:
    daemon: Daemon
    full: httpx.AsyncClient
    mine: int          # LIMITED's customer
    second: int        # another customer of LIMITED's
    other: int         # a customer nobody owns

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.daemon.running.store.read() as conn:
            return [tuple(r) for r in await conn.execute_fetchall(sql, params)]

    async def cases_of(self, customer: int) -> int:
        return int((await self.rows(
            "SELECT count(*) FROM interventions WHERE customer_id = ?", customer))[0][0])

    async def token_for(self, operator: str | None) -> str:
        now = SystemClock().now()
        return await self.daemon.running.store.write(
            lambda tx: create_token(tx, "app", now, operator=operator))


async def _case_with_work(full: httpx.AsyncClient, customer: str, subject: str) -> int:
    """A case of `customer` with an hour of Luca's work on it; its customer's id."""
    made = await full.post("/api/v1/interventions", json={
        "customer_email": customer, "subject": subject, "description": "non parte"})
    assert made.status_code == 201, made.text
    work = await full.post(f"/api/v1/interventions/{made.json()['number']}/activities",
                           json={"employee_email": "luca@firm.test", "kind": "work",
                                 "hours": 1, "text": subject,
                                 "date": SystemClock().now().date().isoformat()})
    assert work.status_code == 201, work.text
    return int(made.json()["customer"]["id"])


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        await add_operator(daemon, ADMIN)
        await add_operator(daemon, LIMITED, role="dispatcher", own_customers_only=True)
        await add_employees(daemon, ("luca@firm.test", "Luca Bianchi", "it"))
        now = SystemClock().now()
        token = await daemon.running.store.write(lambda tx: create_token(tx, "full", now))
        async with httpx.AsyncClient(base_url=daemon.web_url, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as full:
            mine = await _case_with_work(full, "mario@rossi-impianti.it", "Caldaia Rossi")
            other = await _case_with_work(full, "ion@popescu-instal.ro", "Centrala Popescu")
            second = await _case_with_work(full, "anna@bianchi-srl.it", "Boiler Bianchi")
            for customer in (mine, second):
                patched = await full.patch(f"/api/v1/customers/{customer}",
                                           json={"owner": LIMITED})
                assert patched.status_code == 200, patched.text
            yield Office(daemon, full, mine, second, other)


async def test_timesheets_hold_only_their_customers_work(office: Office) -> None:
    """The page, its CSV and the API list a limited operator's customers' work only;
    an unlimited operator's list all three."""
    month = SystemClock().now().date().isoformat()[:7]
    async with logged_in(office.daemon, LIMITED) as client:
        page = (await client.get(f"/timesheets?month={month}")).text
        csv = (await client.get(f"/timesheets.csv?month={month}")).text
    for shown in (page, csv):
        assert "rossi-impianti" in shown
        assert "popescu-instal" not in shown
    token = await office.token_for(LIMITED)
    async with httpx.AsyncClient(base_url=office.daemon.web_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        items = (await api.get("/api/v1/activities")).json()["items"]
        named = (await api.get("/api/v1/activities",
                               params={"customer": str(office.other)})).json()["items"]
    assert sorted(i["customer_id"] for i in items) == sorted([office.mine, office.second])
    assert named == []
    everything = (await office.full.get("/api/v1/activities")).json()["items"]
    assert len(everything) == 3
    async with logged_in(office.daemon, ADMIN) as client:
        assert "popescu-instal" in (await client.get(f"/timesheets?month={month}")).text


async def test_merging_into_another_operators_customer_is_refused(office: Office) -> None:
    """Their customer into someone else's: refused on the page and in the API like a
    customer that does not exist, and nothing moves; into another of their own: done."""
    token = await office.token_for(LIMITED)
    async with httpx.AsyncClient(base_url=office.daemon.web_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        refused = await api.post(f"/api/v1/customers/{office.mine}/merge",
                                 json={"into": office.other})
        missing = await api.post(f"/api/v1/customers/{office.mine}/merge",
                                 json={"into": 999})
    assert refused.status_code == missing.status_code == 422
    assert refused.json()["error"] == missing.json()["error"].replace("999", str(office.other))
    async with logged_in(office.daemon, LIMITED) as client:
        csrf = csrf_of((await client.get(f"/customers/{office.mine}")).text)
        page = await client.post(f"/customers/{office.mine}/merge",
                                 data={"csrf_token": csrf, "into": str(office.other)})
        assert page.status_code == 422
    assert await office.cases_of(office.mine) == 1
    assert await office.cases_of(office.other) == 1
    assert await office.rows("SELECT merged_into FROM customers WHERE id = ?",
                             office.mine) == [(None,)]
    async with logged_in(office.daemon, LIMITED) as client:
        csrf = csrf_of((await client.get(f"/customers/{office.mine}")).text)
        done = await client.post(f"/customers/{office.mine}/merge",
                                 data={"csrf_token": csrf, "into": str(office.second)})
        assert done.status_code == 303
    assert await office.cases_of(office.second) == 2
