"""Editing a request type on its admin page over plain HTTP against the real daemon:
every field the API's PATCH changes, refused by the same checks naming the same field,
in the operator's language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from admin_harness import add_employees, add_operator, csrf_of, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

OPERATOR = "anna@firm.test"
TYPE_PAGE = "/request-types/service_schedule"
STORED = ("SELECT name_en, name_it, name_ro, default_priority, response_hours,"
          " resolution_hours, customer_closing_mail FROM request_types"
          " WHERE code = 'service_schedule'")


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, OPERATOR)
        await add_employees(running, ("luca@firm.test", "Luca Neri", "it"),
                            ("ion@firm.test", "Ion Popescu", "ro"))
        yield running


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(daemon, OPERATOR) as opened:
        yield opened


async def save(client: httpx.AsyncClient, data: dict[str, str | list[str]]) -> httpx.Response:
    token = csrf_of((await client.get(TYPE_PAGE)).text)
    return await client.post(TYPE_PAGE, data={"csrf_token": token, **data})


FORM: dict[str, str | list[str]] = {
    "name_en": "Scheduled maintenance", "name_it": "Manutenzione periodica",
    "name_ro": "Întreținere periodică", "default_priority": "high",
    "response_hours": "2.5", "resolution_hours": "", "customer_closing_mail": "no",
    "default_assignees": ["luca@firm.test"]}


async def test_a_type_is_edited_from_its_page(daemon: Daemon,
                                              client: httpx.AsyncClient) -> None:
    """The list links each type to its page; its form saves names, priority, hours,
    the closing-mail switch and the default assignees, and shows them again; an empty
    field clears (hours back to the default, closing mail as configured, nobody ticked:
    no default assignee)."""
    assert f'href="{TYPE_PAGE}"' in (await client.get("/request-types")).text
    page = (await client.get(TYPE_PAGE)).text
    assert 'value="Service schedule"' in page
    saved = await save(client, FORM)
    assert saved.status_code == 303
    assert saved.headers["location"] == TYPE_PAGE
    assert await daemon.query(STORED) == [("Scheduled maintenance", "Manutenzione periodica",
                                           "Întreținere periodică", "high", 2.5, None, 0)]
    shown = (await client.get(TYPE_PAGE)).text
    assert "Request type service_schedule saved." in shown
    assert 'name="response_hours" min="0" step="any" value="2.5"' in shown
    assert 'value="luca@firm.test" checked' in shown
    assert '<option value="no" selected>' in shown
    cleared = await save(client, {**FORM, "response_hours": "", "customer_closing_mail": "",
                                  "default_assignees": []})
    assert cleared.status_code == 303
    assert (await daemon.query(STORED))[0][4:] == (None, None, None)
    assert await daemon.query("SELECT count(*) FROM request_type_assignees") == [(0,)]


async def test_the_page_refuses_what_the_api_refuses(daemon: Daemon,
                                                     client: httpx.AsyncClient) -> None:
    """A negative time and a retired assignee are refused by the page (422, the form
    shown again with what was typed) as by the API's PATCH, naming the same field with
    the same words where the archive's checks say it; nothing changes."""
    before = await daemon.query(STORED)
    await daemon.running.store.write(lambda tx: tx.execute(
        "UPDATE employees SET active = 0 WHERE email = 'ion@firm.test'"))
    token = await daemon.running.store.write(
        lambda tx: create_token(tx, "t", SystemClock().now()))
    async with httpx.AsyncClient(base_url=daemon.web_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as api:
        for field, page_value, api_value in (
                ("response_hours", "-1", -1), ("resolution_hours", "soon", "soon"),
                ("default_assignees", ["ion@firm.test"], ["ion@firm.test"])):
            refused = await save(client, {**FORM, field: page_value})
            assert refused.status_code == 422, field
            assert f'<p class="error" role="alert">{field}:' in refused.text
            assert 'value="Manutenzione periodica"' in refused.text
            answered = await api.patch(f"/api/v1{TYPE_PAGE}", json={field: api_value})
            assert answered.status_code == 422, field
            assert answered.json()["error"].startswith(f"{field}:")
        retired = "default_assignees: employee ion@firm.test is retired"
        assert retired in refused.text
        assert retired in answered.json()["error"]
    assert await daemon.query(STORED) == before


async def test_unknown_forged_and_read_only(daemon: Daemon, client: httpx.AsyncClient) -> None:
    """A type that does not exist is a 404 page; a form without the CSRF token (403) and
    a viewer's form (403) change nothing."""
    assert (await client.get("/request-types/nothing-like-it")).status_code == 404
    assert (await client.get("/request-types/" + "x" * 300)).status_code == 404
    before = await daemon.query(STORED)
    forged = await client.post(TYPE_PAGE, data={**FORM, "default_priority": "low"})
    assert forged.status_code == 403
    await add_operator(daemon, "vera@firm.test", role="viewer")
    async with logged_in(daemon, "vera@firm.test") as viewer:
        assert (await viewer.get(TYPE_PAGE)).status_code == 200
        token = csrf_of((await viewer.get("/settings")).text)
        refused = await viewer.post(TYPE_PAGE, data={"csrf_token": token, **FORM})
        assert refused.status_code == 403
    assert await daemon.query(STORED) == before


@pytest.mark.parametrize(("language", "refusal", "saved"), [
    ("it", "Tempo di risposta: deve essere tra 0 e", "Tipo di richiesta service_schedule"),
    ("ro", "Timp de răspuns: trebuie să fie între 0 și", "Tipul de solicitare service_schedule"),
])
async def test_the_type_page_reads_in_the_operators_language(
    daemon: Daemon, client: httpx.AsyncClient, language: str, refusal: str, saved: str
) -> None:
    """An Italian or Romanian operator reads the refusal, naming the field by its label,
    and the confirmation in their language."""
    await daemon.running.store.write(lambda tx: tx.execute(
        "UPDATE operators SET language = ?", (language,)))
    refused = await save(client, {**FORM, "response_hours": "100001"})
    assert refused.status_code == 422
    assert refusal in refused.text
    assert (await save(client, FORM)).status_code == 303
    assert saved in (await client.get(TYPE_PAGE)).text
