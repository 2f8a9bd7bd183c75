"""Managing from the admin page, over HTTP against the real daemon: employees (add,
edit, retire, absences), schedules (add, pause, resume) and the operator's password."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from admin_harness import (
    OPERATOR_PASSWORD,
    add_operator,
    csrf_of,
    customer_mail,
    log_in,
    logged_in,
)
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import SystemClock

ANNA = "anna@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, ANNA)
        yield running


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(daemon, ANNA) as opened:
        yield opened


async def post(client: httpx.AsyncClient, path: str, form_page: str,
               **fields: str) -> httpx.Response:
    token = csrf_of((await client.get(form_page)).text)
    return await client.post(path, data={"csrf_token": token, **fields})


async def test_employees_are_added_edited_retired_and_away(
        daemon: Daemon, client: httpx.AsyncClient) -> None:
    """An employee added on the page gets an edit card; their language and active state
    change there; absences are recorded and removed; a bad address or reversed dates
    are refused with the reason."""
    added = await post(client, "/employees", "/employees", email="Luca@Firm.test",
                       name="Luca Bianchi", language="it")
    assert added.status_code == 303, added.text
    card_url = added.headers["location"]
    assert "Luca Bianchi" in (await client.get("/employees")).text
    saved = await post(client, card_url, card_url, name="Luca B.", language="ro")
    assert saved.status_code == 303
    rows = await daemon.query("SELECT name, language, active FROM employees")
    assert rows == [("Luca B.", "ro", 0)]  # the box left unticked retires him
    await post(client, card_url, card_url, name="Luca B.", language="ro", active="on")
    away = await post(client, card_url + "/absences", card_url, **{
        "from": "2026-08-10", "to": "2026-08-21", "reason": "ferie"})
    assert away.status_code == 303
    card = (await client.get(card_url)).text
    assert "10 Aug 2026 – 21 Aug 2026: ferie" in card
    reversed_dates = await post(client, card_url + "/absences", card_url, **{
        "from": "2026-08-10", "to": "2026-08-01"})
    assert reversed_dates.status_code == 422
    removed = await post(client, card_url + "/absences/remove", card_url,
                         **{"from": "2026-08-10"})
    assert removed.status_code == 303
    assert await daemon.query("SELECT count(*) FROM employee_absences") == [(0,)]
    bad = await post(client, "/employees", "/employees", email="not an address",
                     name="X", language="it")
    assert bad.status_code == 422
    assert (await daemon.query("SELECT active FROM employees")) == [(1,)]


async def test_schedules_are_added_paused_and_resumed(
        daemon: Daemon, client: httpx.AsyncClient) -> None:
    """A schedule added on the page shows its next dates; pausing and resuming are one
    button each; a missing subject is refused."""
    first = date(SystemClock().now().year + 1, 3, 1)
    added = await post(client, "/schedules", "/schedules", customer_email="verdi@example.it",
                       customer_name="Condominio Verdi", subject="Manutenzione caldaia",
                       interval="yearly", every="1", first_date=first.isoformat(),
                       lead_days="14", contract_ref="C-7")
    assert added.status_code == 303, added.text
    url = added.headers["location"]
    assert "Manutenzione caldaia" in (await client.get(url)).text
    assert (await post(client, url + "/pause", url)).status_code == 303
    assert await daemon.query("SELECT active FROM schedules") == [(0,)]
    assert "Resume" in (await client.get(url)).text
    assert (await post(client, url + "/resume", url)).status_code == 303
    assert await daemon.query("SELECT active FROM schedules") == [(1,)]
    missing = await post(client, "/schedules", "/schedules", customer_email="a@b.it",
                         subject="", interval="yearly", first_date=first.isoformat())
    assert missing.status_code == 422


async def test_an_operator_changes_their_own_password(daemon: Daemon) -> None:
    """The current password is checked; the change ends the session; the new password
    then logs in and the old one no longer does."""
    new = "an even longer operator passphrase"
    async with logged_in(daemon, ANNA) as client:
        wrong = await post(client, "/settings/password", "/settings", current="nope",
                           new=new, again=new)
        assert wrong.status_code == 422
        changed = await post(client, "/settings/password", "/settings",
                             current=OPERATOR_PASSWORD, new=new, again=new)
        assert changed.status_code == 303
        assert changed.headers["location"] == "/login"
        assert (await client.get("/")).status_code == 303  # logged out
    async with httpx.AsyncClient(base_url=daemon.web_url) as fresh:
        assert (await log_in(fresh, ANNA)).status_code == 401
        assert (await log_in(fresh, ANNA, new)).status_code == 303


async def test_closing_and_suspending_take_a_reason_from_the_list(
        daemon: Daemon, client: httpx.AsyncClient) -> None:
    """The page suspends with a reason of [tickets] hold_reasons and closes with one of
    close_reasons: the reason is kept in status_reason and shown on the thread in the
    operator's words; a reason not on the list is refused."""
    assert (await daemon.send(customer_mail("Caldaia", "Non parte.")))[0] == 250
    refused = await post(client, "/interventions/1/hold", "/interventions/1", reason="boh")
    assert refused.status_code == 422
    held = await post(client, "/interventions/1/hold", "/interventions/1",
                      reason="waiting_parts")
    assert held.status_code == 303
    assert await daemon.query("SELECT status, status_reason FROM interventions") == [
        ("on_hold", "waiting_parts")]
    page = (await client.get("/interventions/1")).text
    assert "Put on hold" in page
    assert "waiting for parts" in page
    closed = await post(client, "/interventions/1/close", "/interventions/1",
                        reason="not_repairable", note="Scheda bruciata.")
    assert closed.status_code == 303
    assert await daemon.query("SELECT status, status_reason FROM interventions") == [
        ("closed", "not_repairable")]
    assert "Reason: not repairable" in (await client.get("/interventions/1")).text
