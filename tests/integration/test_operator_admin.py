"""Managing operators and API tokens from the admin page and the JSON API, over real
sockets against the daemon: only an admin may (a dispatcher or a viewer gets 403 and
the store is unchanged), what an admin does takes effect (roles, retiring, new
passwords, tokens shown once and revoked), and the last active admin stays one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import OPERATOR_PASSWORD, add_operator, csrf_of, log_in, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

ADMIN, DISPATCHER, VIEWER = "boss@firm.test", "desk@firm.test", "look@firm.test"
NEW_PASSWORD = "another long passphrase"


@dataclass
class Office:
    daemon: Daemon
    ids: dict[str, int]        # operator email -> id
    token_id: int              # a live full-access token

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.daemon.running.store.read() as conn:
            return [tuple(r) for r in await conn.execute_fetchall(sql, params)]

    async def snapshot(self) -> list[list[tuple[Any, ...]]]:
        """Everything about operators and tokens an admin action could change."""
        return [
            await self.rows("SELECT id, email, name, password_hash, language, role,"
                            " own_customers_only, active FROM operators ORDER BY id"),
            await self.rows("SELECT id, name, revoked_at, operator_id FROM api_tokens"
                            " ORDER BY id"),
            await self.rows("SELECT count(*) FROM operator_sessions"),
        ]

    async def token_for(self, operator: str | None, name: str) -> str:
        now = SystemClock().now()
        return await self.daemon.running.store.write(
            lambda tx: create_token(tx, name, now, operator=operator))

    def api(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.daemon.web_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Office]:
    async with running_daemon(make_settings(tmp_path / "data")) as daemon:
        ids = {ADMIN: await add_operator(daemon, ADMIN),           # first: admin
               DISPATCHER: await add_operator(daemon, DISPATCHER),
               VIEWER: await add_operator(daemon, VIEWER, role="viewer")}
        office = Office(daemon, ids, 0)
        await office.token_for(None, "backup-script")
        office.token_id = (await office.rows("SELECT max(id) FROM api_tokens"))[0][0]
        yield office


# (who, method, path template, form, status); {v} is the viewer's id, {t} the token's.
PAGE_TABLE = [
    (VIEWER, "GET", "/operators", None, 403),
    (VIEWER, "GET", "/tokens", None, 403),
    (DISPATCHER, "GET", "/operators", None, 403),
    (DISPATCHER, "GET", "/operators/{v}", None, 403),
    (DISPATCHER, "GET", "/tokens", None, 403),
    (DISPATCHER, "POST", "/operators", {"email": "x@firm.test", "role": "admin",
                                        "language": "", "password": NEW_PASSWORD,
                                        "again": NEW_PASSWORD}, 403),
    (DISPATCHER, "POST", "/operators/{v}", {"name": "V", "role": "admin",
                                            "language": ""}, 403),
    (VIEWER, "POST", "/operators/{v}", {"name": "V", "role": "admin", "language": ""}, 403),
    (DISPATCHER, "POST", "/operators/{v}/active", {"active": "0"}, 403),
    (DISPATCHER, "POST", "/operators/{v}/password", {"password": NEW_PASSWORD,
                                                     "again": NEW_PASSWORD}, 403),
    (VIEWER, "POST", "/tokens", {"name": "mine", "operator": ""}, 403),
    (DISPATCHER, "POST", "/tokens", {"name": "mine", "operator": ""}, 403),
    (DISPATCHER, "POST", "/tokens/{t}/revoke", {}, 403),
    (ADMIN, "GET", "/operators", None, 200),
    (ADMIN, "GET", "/operators/{v}", None, 200),
    (ADMIN, "GET", "/tokens", None, 200),
    (ADMIN, "POST", "/operators", {"email": "x@firm.test", "role": "viewer",
                                   "language": "it", "password": NEW_PASSWORD,
                                   "again": NEW_PASSWORD}, 303),
    (ADMIN, "POST", "/operators/{v}", {"name": "V", "role": "dispatcher",
                                       "language": "ro"}, 303),
    (ADMIN, "POST", "/operators/{v}/active", {"active": "0"}, 303),
    (ADMIN, "POST", "/operators/{v}/password", {"password": NEW_PASSWORD,
                                                "again": NEW_PASSWORD}, 303),
    (ADMIN, "POST", "/tokens", {"name": "mine", "operator": VIEWER}, 200),
    (ADMIN, "POST", "/tokens/{t}/revoke", {}, 303),
]


@pytest.mark.parametrize(("who", "method", "template", "form", "status"), PAGE_TABLE)
async def test_pages_role_by_route(office: Office, who: str, method: str, template: str,
                                   form: dict[str, str] | None, status: int) -> None:
    """Only an admin may see or change operators and tokens on the page; a refused
    request leaves operators, tokens and sessions exactly as they were."""
    path = template.format(v=office.ids[VIEWER], t=office.token_id)
    async with logged_in(office.daemon, who) as client:
        before = await office.snapshot()
        if method == "GET":
            reply = await client.get(path)
        else:
            csrf = csrf_of((await client.get("/settings")).text)
            reply = await client.post(path, data={"csrf_token": csrf, **(form or {})})
        assert reply.status_code == status, reply.text[:500]
        if status == 403:
            assert await office.snapshot() == before
        elif method == "POST":
            assert await office.snapshot() != before


# (who, method, path template, JSON body, status); {v}: the viewer's address.
API_TABLE = [
    (VIEWER, "GET", "/api/v1/operators", None, 403),
    (DISPATCHER, "GET", "/api/v1/operators", None, 403),
    (DISPATCHER, "GET", "/api/v1/operators/{v}", None, 403),
    (DISPATCHER, "POST", "/api/v1/operators", {"email": "x@firm.test",
                                               "password": NEW_PASSWORD}, 403),
    (DISPATCHER, "PATCH", "/api/v1/operators/{v}", {"role": "admin"}, 403),
    (VIEWER, "PATCH", "/api/v1/operators/{v}", {"role": "admin"}, 403),
    (DISPATCHER, "GET", "/api/v1/tokens", None, 403),
    (DISPATCHER, "POST", "/api/v1/tokens", {"name": "mine"}, 403),
    (DISPATCHER, "POST", "/api/v1/tokens/{t}/revoke", None, 403),
    (ADMIN, "GET", "/api/v1/operators", None, 200),
    (ADMIN, "GET", "/api/v1/operators/{v}", None, 200),
    (ADMIN, "POST", "/api/v1/operators", {"email": "x@firm.test",
                                          "password": NEW_PASSWORD}, 201),
    (ADMIN, "PATCH", "/api/v1/operators/{v}", {"role": "dispatcher"}, 200),
    (ADMIN, "GET", "/api/v1/tokens", None, 200),
    (ADMIN, "POST", "/api/v1/tokens", {"name": "mine", "operator": VIEWER}, 201),
    (ADMIN, "POST", "/api/v1/tokens/{t}/revoke", None, 200),
    (None, "GET", "/api/v1/operators", None, 200),       # a full-access token
]


@pytest.mark.parametrize(("who", "method", "template", "body", "status"), API_TABLE)
async def test_api_role_by_route(office: Office, who: str | None, method: str,
                                 template: str, body: dict[str, Any] | None,
                                 status: int) -> None:
    """A token acting as a dispatcher or a viewer gets 403 on the operator and token
    routes and changes nothing; an admin's (or a full-access) token may use them."""
    path = template.format(v=VIEWER, t=office.token_id)
    token = await office.token_for(who, "caller")
    before = await office.snapshot()
    async with office.api(token) as api:
        reply = await api.request(method, path, json=body)
    assert reply.status_code == status, reply.text
    if status == 403:
        assert await office.snapshot() == before
    assert "password_hash" not in reply.text


async def test_an_operator_added_on_the_page_logs_in_with_their_role(office: Office) -> None:
    """The admin adds a viewer limited to their own customers, in Italian; they log in
    with the password the admin gave and read only, in Italian."""
    async with logged_in(office.daemon, ADMIN) as client:
        csrf = csrf_of((await client.get("/operators")).text)
        added = await client.post("/operators", data={
            "csrf_token": csrf, "email": "Nuova@Firm.test", "name": "Nuova", "role": "viewer",
            "language": "it", "own_customers_only": "on", "password": NEW_PASSWORD,
            "again": NEW_PASSWORD}, follow_redirects=True)
        assert added.status_code == 200
        assert "Operator added." in added.text
        listing = (await client.get("/operators")).text
        assert "nuova@firm.test" in listing
        assert "own customers only" in listing
    assert await office.rows("SELECT role, language, own_customers_only, active FROM"
                             " operators WHERE email = 'nuova@firm.test'") == [
        ("viewer", "it", 1, 1)]
    async with httpx.AsyncClient(base_url=office.daemon.web_url, timeout=30) as client:
        assert (await log_in(client, "nuova@firm.test", NEW_PASSWORD)).status_code == 303
        page = (await client.get("/")).text
        assert "Interventi" in page
        assert '<main class="read-only">' in page
        assert (await client.get("/operators")).status_code == 403


async def test_adding_a_taken_address_or_a_short_password_changes_nothing(
        office: Office) -> None:
    """An address in use answers 409, a short or mistyped password 422; no operator is
    added."""
    before = await office.snapshot()
    async with logged_in(office.daemon, ADMIN) as client:
        csrf = csrf_of((await client.get("/operators")).text)
        base = {"csrf_token": csrf, "role": "viewer", "language": ""}
        taken = await client.post("/operators", data={
            **base, "email": DISPATCHER, "password": NEW_PASSWORD, "again": NEW_PASSWORD})
        short = await client.post("/operators", data={
            **base, "email": "n@firm.test", "password": "short", "again": "short"})
        differ = await client.post("/operators", data={
            **base, "email": "n@firm.test", "password": NEW_PASSWORD, "again": "other one!"})
    assert (taken.status_code, short.status_code, differ.status_code) == (409, 422, 422)
    assert (await office.snapshot())[0] == before[0]


async def test_disabling_ends_the_session_and_the_token_then_enabling_lets_in(
        office: Office) -> None:
    """A disabled dispatcher's open session goes back to the login, their token gets
    401 and their password no longer logs in; enabled again, it does."""
    token = await office.token_for(DISPATCHER, "phone-app")
    dispatcher = office.ids[DISPATCHER]
    async with logged_in(office.daemon, DISPATCHER) as theirs, \
            logged_in(office.daemon, ADMIN) as admin:
        csrf = csrf_of((await admin.get(f"/operators/{dispatcher}")).text)
        off = await admin.post(f"/operators/{dispatcher}/active",
                               data={"csrf_token": csrf, "active": "0"})
        assert off.status_code == 303
        assert (await theirs.get("/")).status_code == 303
        async with office.api(token) as api:
            assert (await api.get("/api/v1/interventions")).status_code == 401
        async with httpx.AsyncClient(base_url=office.daemon.web_url, timeout=30) as fresh:
            assert (await log_in(fresh, DISPATCHER)).status_code != 303
        on = await admin.post(f"/operators/{dispatcher}/active",
                              data={"csrf_token": csrf, "active": "1"})
        assert on.status_code == 303
    async with httpx.AsyncClient(base_url=office.daemon.web_url, timeout=30) as fresh:
        assert (await log_in(fresh, DISPATCHER)).status_code == 303


async def test_a_new_password_set_by_the_admin_replaces_the_old_one(office: Office) -> None:
    """The old password stops working and their sessions end; the new one logs in."""
    viewer = office.ids[VIEWER]
    async with logged_in(office.daemon, VIEWER) as theirs, \
            logged_in(office.daemon, ADMIN) as admin:
        csrf = csrf_of((await admin.get(f"/operators/{viewer}")).text)
        reply = await admin.post(f"/operators/{viewer}/password", data={
            "csrf_token": csrf, "password": NEW_PASSWORD, "again": NEW_PASSWORD},
            follow_redirects=True)
        assert "New password set" in reply.text
        assert (await theirs.get("/")).status_code == 303
    async with httpx.AsyncClient(base_url=office.daemon.web_url, timeout=30) as fresh:
        assert (await log_in(fresh, VIEWER, OPERATOR_PASSWORD)).status_code != 303
        assert (await log_in(fresh, VIEWER, NEW_PASSWORD)).status_code == 303


async def test_the_last_admin_can_be_neither_demoted_nor_disabled(office: Office) -> None:
    """The only admin making themself a dispatcher or disabling themself gets 409 on the
    page and in the API and stays admin; once another admin exists, demoting works."""
    admin_id = office.ids[ADMIN]
    before = await office.snapshot()
    async with logged_in(office.daemon, ADMIN) as client:
        csrf = csrf_of((await client.get(f"/operators/{admin_id}")).text)
        demote = await client.post(f"/operators/{admin_id}", data={
            "csrf_token": csrf, "name": "Boss", "role": "dispatcher", "language": ""})
        disable = await client.post(f"/operators/{admin_id}/active",
                                    data={"csrf_token": csrf, "active": "0"})
        assert (demote.status_code, disable.status_code) == (409, 409)
        assert "last active admin" in demote.text
        token = await office.token_for(ADMIN, "admin-app")
        async with office.api(token) as api:
            refused = [await api.patch(f"/api/v1/operators/{ADMIN}", json=body)
                       for body in ({"role": "viewer"}, {"active": False},
                                    {"name": "Renamed", "role": "viewer"})]
        assert [r.status_code for r in refused] == [409, 409, 409]
        assert (await office.snapshot())[0] == before[0]

        promote = await client.post(f"/operators/{office.ids[DISPATCHER]}", data={
            "csrf_token": csrf, "name": "Desk", "role": "admin", "language": ""})
        assert promote.status_code == 303
        demote = await client.post(f"/operators/{admin_id}", data={
            "csrf_token": csrf, "name": "Boss", "role": "dispatcher", "language": ""})
        assert (demote.status_code, demote.headers["location"]) == (303, "/")
    assert dict(await office.rows("SELECT email, role FROM operators")) == {
        ADMIN: "dispatcher", DISPATCHER: "admin", VIEWER: "viewer"}


async def test_a_token_made_on_the_page_is_shown_once_and_revoked(office: Office) -> None:
    """The secret is on the answer to the form and never again; it acts as the chosen
    viewer (reads, may not write); revoked, it gets 401."""
    async with logged_in(office.daemon, ADMIN) as client:
        csrf = csrf_of((await client.get("/tokens")).text)
        made = await client.post("/tokens", data={
            "csrf_token": csrf, "name": "wallboard", "operator": VIEWER})
        assert made.status_code == 200
        secret = made.text.split('<code class="token-secret">')[1].split("</code>")[0]
        assert len(secret) >= 40
        listing = (await client.get("/tokens")).text
        assert "wallboard" in listing
        assert secret not in listing
        async with office.api(secret) as api:
            assert (await api.get("/api/v1/interventions")).status_code == 200
            assert (await api.get("/api/v1/operators")).status_code == 403
        token_id = (await office.rows(
            "SELECT id FROM api_tokens WHERE name = 'wallboard'"))[0][0]
        revoked = await client.post(f"/tokens/{token_id}/revoke",
                                    data={"csrf_token": csrf})
        assert revoked.status_code == 303
        again = await client.post(f"/tokens/{token_id}/revoke", data={"csrf_token": csrf})
        assert again.status_code == 409
    async with office.api(secret) as api:
        assert (await api.get("/api/v1/interventions")).status_code == 401


async def test_operators_and_tokens_through_the_api(office: Office) -> None:
    """An admin's token adds an operator (never showing a hash), changes their role,
    language and limit, makes a token acting as them (shown once) and revokes it."""
    token = await office.token_for(ADMIN, "admin-app")
    async with office.api(token) as api:
        added = await api.post("/api/v1/operators", json={
            "email": "Ion@Firm.test", "password": NEW_PASSWORD, "name": "Ion",
            "language": "ro"})
        assert added.status_code == 201, added.text
        assert {k: added.json()[k] for k in ("email", "role", "language", "active")} == {
            "email": "ion@firm.test", "role": "dispatcher", "language": "ro", "active": True}
        taken = await api.post("/api/v1/operators", json={
            "email": "ion@firm.test", "password": NEW_PASSWORD})
        assert taken.status_code == 409
        short = await api.post("/api/v1/operators", json={
            "email": "z@firm.test", "password": "short"})
        assert short.status_code == 422
        patched = await api.patch("/api/v1/operators/ion@firm.test", json={
            "role": "viewer", "language": None, "own_customers_only": True})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["role"], patched.json()["language"],
                patched.json()["own_customers_only"]) == ("viewer", None, True)
        assert (await api.get("/api/v1/operators/nobody@firm.test")).status_code == 404
        made = await api.post("/api/v1/tokens", json={"name": "ion-app",
                                                      "operator": "ion@firm.test"})
        assert made.status_code == 201, made.text
        secret, token_id = made.json()["token"], made.json()["id"]
        assert made.json()["operator"] == "ion@firm.test"
        listed = (await api.get("/api/v1/tokens")).json()["items"]
        assert secret not in str(listed)
        assert {"id": token_id, "name": "ion-app", "operator": "ion@firm.test"}.items() <= next(
            t for t in listed if t["id"] == token_id).items()
        nobody = await api.post("/api/v1/tokens", json={"name": "x", "operator": "no@x.it"})
        assert nobody.status_code == 404
        async with office.api(secret) as ion:
            assert (await ion.get("/api/v1/interventions")).status_code == 200
            created = await ion.post("/api/v1/interventions", json={
                "customer_email": "a@b.it", "subject": "s", "description": "d"})
            assert created.status_code == 403
        revoked = await api.post(f"/api/v1/tokens/{token_id}/revoke")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"]
        async with office.api(secret) as ion:
            assert (await ion.get("/api/v1/interventions")).status_code == 401
