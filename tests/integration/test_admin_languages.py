"""The admin pages in the operator's language, over HTTP against the real daemon: an
Italian and a Romanian operator walk every page and meet no English text of ours."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from admin_harness import add_operator, csrf_of, log_in, logged_in
from admin_languages import english_left, operator_speaking, seed_desk
from daemon_harness import Daemon, make_settings, running_daemon


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await seed_desk(running)
        yield running


PAGES = ["/", "/?status=closed", "/interventions/new", "/employees", "/schedules",
         "/schedules/1", "/interventions/1", "/settings", "/interventions/999",
         "/customers", "/customers/1", "/equipment/1", "/request-types", "/customers/999",
         "/operators", "/operators/1", "/tokens"]


@pytest.mark.parametrize(("language", "words"), [
    ("it", ["Interventi", "Richiesta telefonica", "Esci"]),
    ("ro", ["Intervenții", "Solicitare telefonică", "Ieșire"]),
])
async def test_every_page_speaks_the_operators_language(
        daemon: Daemon, language: str, words: list[str]) -> None:
    """Each page, the error page included, is in the operator's language with dates
    as dd/mm/yyyy; none of our English texts is left."""
    email = f"op-{language}@firm.test"
    await operator_speaking(daemon, email, language)
    async with logged_in(daemon, email) as client:
        for path in PAGES:
            response = await client.get(path)
            assert response.status_code in (200, 404), path
            assert f'<html lang="{language}">' in response.text, path
            assert english_left(response.text, language) == [], path
        listing = (await client.get("/")).text
        for word in words:
            assert word in listing
        assert re.search(r"\d\d/\d\d/20\d\d \d\d:\d\d", listing), "a dd/mm/yyyy HH:MM date"
        thread = (await client.get("/interventions/1")).text
        assert ">aperto<" in thread if language == "it" else ">deschisă<" in thread


async def test_flash_messages_follow_the_operator(daemon: Daemon) -> None:
    """A flash set by an action is shown translated on the next page."""
    await operator_speaking(daemon, "giulia@firm.test", "it")
    async with logged_in(daemon, "giulia@firm.test") as client:
        token = csrf_of((await client.get("/interventions/1")).text)
        closed = await client.post("/interventions/1/close", data={"csrf_token": token},
                                   follow_redirects=True)
        assert "Intervento n. 1 chiuso." in closed.text


async def test_without_a_choice_the_browser_then_the_default_decides(tmp_path: Path) -> None:
    """An operator who chose nothing reads the browser's language; with none of ours
    asked for, `[web] default_language`; the choice in Settings then wins."""
    settings = make_settings(tmp_path / "data", web={"default_language": "ro"})
    async with running_daemon(settings) as daemon:
        await add_operator(daemon, "anna@firm.test")
        async with httpx.AsyncClient(base_url=daemon.web_url, timeout=30) as client:
            assert "Autentificare" in (await client.get("/login")).text
            italian = {"Accept-Language": "it-IT,it;q=0.9,en;q=0.5"}
            assert "Accedi" in (await client.get("/login", headers=italian)).text
            assert (await log_in(client, "anna@firm.test")).status_code == 303
            assert "Intervenții" in (await client.get("/")).text
            assert "Interventi" in (await client.get("/", headers=italian)).text
            form = await client.get("/settings")
            saved = await client.post("/settings", headers=italian, follow_redirects=True,
                                      data={"csrf_token": csrf_of(form.text), "language": "en"})
            assert "Settings saved." in saved.text
            assert ">Interventions<" in (await client.get("/", headers=italian)).text
            bad = await client.post("/settings", data={
                "csrf_token": csrf_of(form.text), "language": "de"})
            assert bad.status_code == 422


async def test_a_domain_refusal_is_in_the_operators_language(daemon: Daemon) -> None:
    """Assigning the same technician twice: an Italian operator reads the refusal in
    Italian, with its values."""
    await operator_speaking(daemon, "giulia@firm.test", "it")
    async with logged_in(daemon, "giulia@firm.test") as client:
        token = csrf_of((await client.get("/interventions/1")).text)
        form = {"csrf_token": token, "employee_email": "luca@firm.test"}
        assert (await client.post("/interventions/1/assign", data=form)).status_code == 303
        again = await client.post("/interventions/1/assign", data=form)
        assert again.status_code == 409
        assert "luca@firm.test è già assegnato all&#39;intervento 1" in again.text
        assert "is already assigned" not in again.text


async def test_a_refused_entry_form_names_the_field_in_the_operators_language(
        daemon: Daemon) -> None:
    """A phone request without the customer's address comes back to a Romanian
    operator with the field named by its Romanian label in a Romanian sentence, not
    pydantic's English."""
    await operator_speaking(daemon, "ana@firm.test", "ro")
    async with logged_in(daemon, "ana@firm.test") as client:
        token = csrf_of((await client.get("/interventions/new")).text)
        refused = await client.post("/interventions/new", data={
            "csrf_token": token, "subject": "Caldaia", "description": "Non parte."})
        assert refused.status_code == 422
        assert "E-mailul clientului: este obligatoriu." in refused.text
        assert english_left(refused.text, "ro") == []
