"""Operator roles and the own-customers limit, over real sockets against the daemon:
the admin pages (a logged-in session) and the JSON API (a token acting as an operator)
answer each role and route as the role allows, a refused write changes nothing in the
store, and a limited operator sees only the cases of the customers they own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import add_operator, csrf_of, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

ADMIN, DISPATCHER, VIEWER, LIMITED = (
    "boss@firm.test", "desk@firm.test", "look@firm.test", "own@firm.test")


@dataclass
class Office:
    daemon: Daemon
    full: httpx.AsyncClient          # a token without an operator: full access
    mine: int                        # a case of a customer LIMITED owns
    other: int                       # a case of a customer nobody owns

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.daemon.running.store.read() as conn:
            return [tuple(r) for r in await conn.execute_fetchall(sql, params)]

    async def token_for(self, operator: str | None, name: str) -> str:
        now = SystemClock().now()
        return await self.daemon.running.store.write(
            lambda tx: create_token(tx, name, now, operator=operator))

    async def thread_size(self, number: int) -> int:
        return (await self.rows(
            "SELECT count(*) FROM messages WHERE intervention_number = ?", number))[0][0]


async def _new_case(full: httpx.AsyncClient, customer: str, subject: str) -> int:
    reply = await full.post("/api/v1/interventions", json={
        "customer_email": customer, "subject": subject, "description": "the boiler leaks"})
    assert reply.status_code == 201, reply.text
    return int(reply.json()["number"])


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        await add_operator(daemon, ADMIN)              # the first: admin by default
        await add_operator(daemon, DISPATCHER)         # later ones: dispatcher
        await add_operator(daemon, VIEWER, role="viewer")
        await add_operator(daemon, LIMITED, role="dispatcher", own_customers_only=True)
        now = SystemClock().now()
        token = await daemon.running.store.write(lambda tx: create_token(tx, "full", now))
        async with httpx.AsyncClient(base_url=daemon.web_url,
                                     headers={"Authorization": f"Bearer {token}"}) as full:
            mine = await _new_case(full, "mario@rossi-impianti.it", "Caldaia Rossi")
            other = await _new_case(full, "ion@popescu-instal.ro", "Centrala Popescu")
            office = Office(daemon, full, mine, other)
            customer = (await office.rows(
                "SELECT customer_id FROM interventions WHERE number = ?", mine))[0][0]
            patched = await full.patch(f"/api/v1/customers/{customer}",
                                       json={"owner": LIMITED})
            assert patched.status_code == 200, patched.text
            yield office


async def test_default_roles_first_admin_then_dispatcher(office: Office) -> None:
    """Without --role the first operator is admin and the later ones dispatchers."""
    roles = dict(await office.rows("SELECT email, role FROM operators"))
    assert roles == {ADMIN: "admin", DISPATCHER: "dispatcher", VIEWER: "viewer",
                     LIMITED: "dispatcher"}


# (who, method, path template, form, expected status); {n} is the case, {c} its customer.
PAGE_TABLE = [
    (VIEWER, "GET", "/", None, 200),
    (VIEWER, "GET", "/interventions/{n}", None, 200),
    (VIEWER, "POST", "/interventions/{n}/notes", {"text": "viewer's note"}, 403),
    (VIEWER, "POST", "/interventions/{n}/close", {"note": ""}, 403),
    (VIEWER, "POST", "/customers/{c}", {"name": "Renamed"}, 403),
    (VIEWER, "POST", "/settings", {"language": "it"}, 303),
    (DISPATCHER, "POST", "/interventions/{n}/notes", {"text": "dispatcher's note"}, 303),
    (DISPATCHER, "POST", "/interventions/{n}/close", {"note": ""}, 303),
    (ADMIN, "POST", "/interventions/{n}/notes", {"text": "admin's note"}, 303),
]


@pytest.mark.parametrize(("who", "method", "template", "form", "status"), PAGE_TABLE)
async def test_pages_role_by_route(office: Office, who: str, method: str, template: str,
                                   form: dict[str, str] | None, status: int) -> None:
    """Each role gets the status its role allows on the page routes; a refused write
    leaves the thread, the case's status and the customer as they were."""
    number = office.other
    customer = (await office.rows(
        "SELECT customer_id FROM interventions WHERE number = ?", number))[0][0]
    path = template.format(n=number, c=customer)
    before = (await office.thread_size(number),
              await office.rows("SELECT status FROM interventions WHERE number = ?", number),
              await office.rows("SELECT name FROM customers WHERE id = ?", customer))
    async with logged_in(office.daemon, who) as client:
        if method == "GET":
            reply = await client.get(path)
        else:
            csrf = csrf_of((await client.get(f"/interventions/{number}")).text)
            reply = await client.post(path, data={"csrf_token": csrf, **(form or {})})
    assert reply.status_code == status, reply.text[:500]
    after = (await office.thread_size(number),
             await office.rows("SELECT status FROM interventions WHERE number = ?", number),
             await office.rows("SELECT name FROM customers WHERE id = ?", customer))
    if status == 403:
        assert after == before
    elif method == "POST" and "notes" in path:
        assert after[0] == before[0] + 1


async def test_api_token_acting_as_a_viewer_reads_but_cannot_write(office: Office) -> None:
    """A viewer's token lists and reads cases; its POST and PATCH answer 403 and the
    store is unchanged."""
    token = await office.token_for(VIEWER, "wallboard")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=office.daemon.web_url, headers=headers) as api:
        assert (await api.get("/api/v1/interventions")).status_code == 200
        assert (await api.get(f"/api/v1/interventions/{office.other}")).status_code == 200
        size = await office.thread_size(office.other)
        closed = await api.post(f"/api/v1/interventions/{office.other}/close", json={})
        patched = await api.patch(f"/api/v1/interventions/{office.other}",
                                  json={"subject": "changed by a viewer"})
        created = await api.post("/api/v1/interventions", json={
            "customer_email": "x@example.it", "subject": "s", "description": "d"})
    assert (closed.status_code, patched.status_code, created.status_code) == (403, 403, 403)
    assert await office.thread_size(office.other) == size
    assert await office.rows("SELECT status, subject FROM interventions WHERE number = ?",
                             office.other) == [("open", "Centrala Popescu")]
    assert (await office.rows("SELECT count(*) FROM interventions"))[0][0] == 2


async def test_api_token_acting_as_a_dispatcher_records_who_acted(office: Office) -> None:
    """A dispatcher's token may close a case; the thread records the token and the
    operator behind it, where a plain token records only its name."""
    token = await office.token_for(DISPATCHER, "phone-app")
    async with httpx.AsyncClient(base_url=office.daemon.web_url,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        reply = await api.post(f"/api/v1/interventions/{office.other}/close", json={})
    assert reply.status_code == 200, reply.text
    authors = {row[0] for row in await office.rows(
        "SELECT author FROM messages WHERE intervention_number = ?", office.other)}
    assert f"api:phone-app ({DISPATCHER})" in authors
    created = {row[0] for row in await office.rows(
        "SELECT author FROM messages WHERE intervention_number = ?", office.mine)}
    assert "api:full" in created


async def test_a_disabled_operators_token_stops_working(office: Office) -> None:
    """A token acting as an operator dies with their access."""
    token = await office.token_for(DISPATCHER, "phone-app")
    await office.daemon.running.store.write(
        lambda tx: tx.execute("UPDATE operators SET active = 0 WHERE email = ?",
                              (DISPATCHER,)))
    async with httpx.AsyncClient(base_url=office.daemon.web_url,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        assert (await api.get("/api/v1/interventions")).status_code == 401


async def test_own_customers_only_on_the_pages(office: Office) -> None:
    """A limited operator's list shows only their customer's case; the other case's
    page and its note form answer 404 and add nothing."""
    size = await office.thread_size(office.other)
    async with logged_in(office.daemon, LIMITED) as client:
        listing = (await client.get("/")).text
        assert "Caldaia Rossi" in listing
        assert "Centrala Popescu" not in listing
        assert (await client.get(f"/interventions/{office.mine}")).status_code == 200
        assert (await client.get(f"/interventions/{office.other}")).status_code == 404
        csrf = csrf_of((await client.get(f"/interventions/{office.mine}")).text)
        note = await client.post(f"/interventions/{office.other}/notes",
                                 data={"csrf_token": csrf, "text": "not mine"})
        assert note.status_code == 404
    assert await office.thread_size(office.other) == size
    async with logged_in(office.daemon, DISPATCHER) as client:
        listing = (await client.get("/")).text
        assert "Caldaia Rossi" in listing
        assert "Centrala Popescu" in listing


async def test_own_customers_only_through_a_token(office: Office) -> None:
    """A token acting as a limited operator lists only their customer's case and gets
    404 for the other one, in reading and in writing."""
    token = await office.token_for(LIMITED, "own-app")
    async with httpx.AsyncClient(base_url=office.daemon.web_url,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        listed = (await api.get("/api/v1/interventions")).json()
        assert [item["number"] for item in listed["items"]] == [office.mine]
        assert (await api.get(f"/api/v1/interventions/{office.mine}")).status_code == 200
        assert (await api.get(f"/api/v1/interventions/{office.other}")).status_code == 404
        closed = await api.post(f"/api/v1/interventions/{office.other}/close", json={})
        assert closed.status_code == 404
    assert await office.rows("SELECT status FROM interventions WHERE number = ?",
                             office.other) == [("open",)]
    full = (await office.full.get("/api/v1/interventions")).json()
    assert sorted(item["number"] for item in full["items"]) == sorted(
        [office.mine, office.other])


async def test_own_customers_only_for_customer_cards(office: Office) -> None:
    """A limited operator lists only the customers they own (page and API) and gets
    404 for another customer's card, where a dispatcher sees both."""
    mine, other = [(await office.rows(
        "SELECT customer_id FROM interventions WHERE number = ?", n))[0][0]
        for n in (office.mine, office.other)]
    token = await office.token_for(LIMITED, "own-app")
    async with httpx.AsyncClient(base_url=office.daemon.web_url,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        listed = (await api.get("/api/v1/customers")).json()
        assert [item["id"] for item in listed["items"]] == [mine]
        assert (await api.get(f"/api/v1/customers/{other}")).status_code == 404
        patched = await api.patch(f"/api/v1/customers/{other}", json={"name": "Taken"})
        assert patched.status_code == 404
    assert (await office.rows("SELECT name FROM customers WHERE id = ?", other))[0][0] != (
        "Taken")
    async with logged_in(office.daemon, LIMITED) as client:
        assert (await client.get(f"/customers/{mine}")).status_code == 200
        assert (await client.get(f"/customers/{other}")).status_code == 404
    async with logged_in(office.daemon, DISPATCHER) as client:
        assert (await client.get(f"/customers/{other}")).status_code == 200
    everyone = (await office.full.get("/api/v1/customers")).json()
    assert sorted(item["id"] for item in everyone["items"]) == sorted([mine, other])


async def test_a_viewers_pages_leave_out_the_forms_that_change_things(office: Office) -> None:
    """A viewer's thread page is marked read only (its POST forms hidden) and has no
    phone-request link; a dispatcher's is not; the viewer's settings stay usable."""
    async with logged_in(office.daemon, VIEWER) as client:
        page = (await client.get(f"/interventions/{office.other}")).text
        settings = (await client.get("/settings")).text
    assert '<main class="read-only">' in page
    assert 'href="/interventions/new"' not in page
    assert '<main class="read-only">' not in settings
    async with logged_in(office.daemon, DISPATCHER) as client:
        page = (await client.get(f"/interventions/{office.other}")).text
    assert '<main class="read-only">' not in page
    assert 'href="/interventions/new"' in page


async def test_own_customers_only_for_contacts_sites_machines_and_new_cases(
        office: Office) -> None:
    """A limited operator gets 404 for another customer's contacts, sites and machines,
    in reading and in writing, lists only their own machines, cannot add a machine to
    another's customer nor open a case for them (nothing is written); a case for a new
    customer makes that customer theirs."""
    mine, other = [(await office.rows(
        "SELECT customer_id FROM interventions WHERE number = ?", n))[0][0]
        for n in (office.mine, office.other)]
    made = {}
    for owner in (mine, other):
        contact = await office.full.post(f"/api/v1/customers/{owner}/contacts",
                                         json={"name": f"Persona {owner}"})
        site = await office.full.post(f"/api/v1/customers/{owner}/sites",
                                      json={"name": f"Sede {owner}"})
        machine = await office.full.post("/api/v1/equipment", json={
            "customer_id": owner, "serial": f"SN-{owner}"})
        made[owner] = (contact.json()["id"], site.json()["id"], machine.json()["id"])
    contact, site, machine = made[other]
    token = await office.token_for(LIMITED, "own-app")
    async with httpx.AsyncClient(base_url=office.daemon.web_url,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        assert (await api.patch(f"/api/v1/contacts/{contact}", json={"name": "X"})
                ).status_code == 404
        assert (await api.patch(f"/api/v1/sites/{site}", json={"name": "X"})
                ).status_code == 404
        assert (await api.get(f"/api/v1/equipment/{machine}")).status_code == 404
        assert (await api.patch(f"/api/v1/equipment/{machine}", json={"model": "X"})
                ).status_code == 404
        assert (await api.get(f"/api/v1/customers/{other}/contacts")).status_code == 404
        assert (await api.get(f"/api/v1/customers/{other}/sites")).status_code == 404
        assert (await api.get(f"/api/v1/equipment/{made[mine][2]}")).status_code == 200
        listed = (await api.get("/api/v1/equipment")).json()
        assert [m["id"] for m in listed["items"]] == [made[mine][2]]
        added = await api.post("/api/v1/equipment", json={"customer_id": other,
                                                          "serial": "SN-NEW"})
        assert added.status_code == 404
        refused = await api.post("/api/v1/interventions", json={
            "customer_email": "ion@popescu-instal.ro", "subject": "Not mine",
            "description": "..."})
        assert refused.status_code == 404
        fresh = await api.post("/api/v1/interventions", json={
            "customer_email": "nuovo@bianchi-termo.it", "subject": "Nuovo cliente",
            "description": "La caldaia non parte"})
        assert fresh.status_code == 201, fresh.text
        assert fresh.json()["customer"]["owner"] == LIMITED
        assert (await api.get(f"/api/v1/interventions/{fresh.json()['number']}")
                ).status_code == 200
    assert await office.rows("SELECT count(*) FROM interventions WHERE subject = ?",
                             "Not mine") == [(0,)]
    assert await office.rows("SELECT count(*) FROM equipment WHERE serial = 'SN-NEW'") == [
        (0,)]
    assert await office.rows("SELECT name FROM contacts WHERE id = ?", contact) == [
        (f"Persona {other}",)]
    async with logged_in(office.daemon, LIMITED) as client:
        assert (await client.get(f"/equipment/{machine}")).status_code == 404
        assert (await client.get(f"/equipment/{made[mine][2]}")).status_code == 200


async def test_own_customers_only_when_entering_a_case_on_the_page(office: Office) -> None:
    """The new-case form of a limited operator refuses another's customer with a 404
    and writes nothing; a new customer's case is opened and the customer is theirs."""
    async with logged_in(office.daemon, LIMITED) as client:
        csrf = csrf_of((await client.get("/interventions/new")).text)
        form = {"csrf_token": csrf, "subject": "Da pagina", "description": "Perde acqua"}
        refused = await client.post("/interventions/new", data={
            **form, "customer_email": "ion@popescu-instal.ro"})
        assert refused.status_code == 404
        opened = await client.post("/interventions/new", data={
            **form, "customer_email": "nuova@verdi-clima.it"})
        assert opened.status_code == 303, opened.text
    assert await office.rows(
        "SELECT c.email, c.owner FROM interventions i JOIN customers c"
        " ON c.id = i.customer_id WHERE i.subject = 'Da pagina'") == [
        ("nuova@verdi-clima.it", LIMITED)]
