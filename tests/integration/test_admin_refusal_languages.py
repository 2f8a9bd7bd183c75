"""Refused forms in the operator's language, over HTTP against the real daemon: an
Italian and a Romanian operator read every refusal (a sequence step, our own checks on
the phone-request form, the schedule form's date, a refusal shared with the API) as a
sentence of their language naming the field by its label, with no English left."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from admin_harness import add_employees, csrf_of, customer_mail, logged_in
from admin_languages import english_left, operator_speaking
from daemon_harness import Daemon, make_settings, running_daemon

OPERATOR = "op@firm.test"
LUCA = "luca@firm.test"
# [limits] max_message_bytes: the note form takes this much in files, plus 1 MiB of form.
MAX_MESSAGE_BYTES = 1024

# What each refusal says, per language.
EXPECTED = {
    "it": {
        "step_hours": "Passo 2: Ore previste: deve essere un numero.",
        "step_days": "Passo 1: Giorni prima del passo successivo: deve essere almeno 0.",
        "address": "Email del cliente: non è un indirizzo email",
        "period": "Desiderato fino al: è prima della data di inizio desiderata",
        "missing": "Oggetto: è obbligatorio.",
        "schedule_date": "Prima data: deve essere una data",
        "schedule_days": "Giorni di anticipo per aprirla: deve essere un numero intero",
        "too_large": "la richiesta supera i",
    },
    "ro": {
        "step_hours": "Pasul 2: Ore estimate: trebuie să fie un număr.",
        "step_days": "Pasul 1: Zile până la pasul următor: trebuie să fie cel puțin 0.",
        "address": "E-mailul clientului: nu este o adresă de e-mail",
        "period": "Dorit până la: este înainte de data de început dorită",
        "missing": "Subiect: este obligatoriu.",
        "schedule_date": "Prima dată: trebuie să fie o dată",
        "schedule_days": "Cu câte zile înainte se deschide: trebuie să fie un număr întreg",
        "too_large": "cererea depășește",
    },
}


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data",
                             limits={"max_message_bytes": MAX_MESSAGE_BYTES})
    async with running_daemon(settings) as running:
        await add_employees(running, (LUCA, "Luca Bianchi", "it"))
        assert (await running.send(customer_mail("Caldaia in blocco", "Non parte.")))[0] == 250
        yield running


async def refused(client: httpx.AsyncClient, page: str, action: str,
                  data: dict[str, str]) -> str:
    token = csrf_of((await client.get(page)).text)
    answer = await client.post(action, data={"csrf_token": token, **data})
    assert answer.status_code == 422, answer.text
    return answer.text


@pytest.mark.parametrize("language", ["it", "ro"])
async def test_every_refusal_reads_in_the_operators_language(daemon: Daemon,
                                                             language: str) -> None:
    """(a) a sequence step's hours and days; (b) our own checks on the phone-request
    form, and a missing field; (c) the schedule form's date and days ahead; (d) a
    refusal the API shares (a body over the size limit): each in the operator's
    language, the field named by its label, nothing made, no English of ours left."""
    words = EXPECTED[language]
    await operator_speaking(daemon, OPERATOR, language)
    async with logged_in(daemon, OPERATOR) as client:
        step = {"code": "X-1", "assignee_1": f"employee:{LUCA}", "action_1": "call"}
        pages = [
            await refused(client, "/sequences", "/sequences", {
                **step, "assignee_2": f"employee:{LUCA}", "action_2": "visit",
                "hours_2": "due"}),
            await refused(client, "/sequences", "/sequences", {**step, "postpone_1": "-1"}),
            await refused(client, "/interventions/new", "/interventions/new", {
                "customer_email": "non-un-indirizzo", "subject": "Ascensore fermo",
                "description": "x", "desired_from": "2026-03-04",
                "desired_to": "2026-03-01"}),
            await refused(client, "/interventions/new", "/interventions/new", {
                "customer_email": "verdi@example.it", "description": "x"}),
            await refused(client, "/schedules", "/schedules", {
                "customer_email": "verdi@example.it", "subject": "Manutenzione",
                "interval": "yearly", "first_date": "31/02/2027"}),
            await refused(client, "/schedules", "/schedules", {
                "customer_email": "verdi@example.it", "subject": "Manutenzione",
                "interval": "yearly", "first_date": "2027-02-28", "lead_days": "tre"}),
        ]
        token = csrf_of((await client.get("/interventions/1")).text)
        too_large = await client.post(
            "/interventions/1/notes", data={"csrf_token": token, "text": "nota"},
            files={"file": ("foto.jpg", b"x" * (MAX_MESSAGE_BYTES + 1024 * 1024 + 1),
                            "image/jpeg")})
        assert too_large.status_code == 413
        pages.append(too_large.text)
    shown = "\n".join(pages)
    for key, text in words.items():
        assert text in shown, key
    for page in pages:
        assert english_left(page, language) == []
        for english in ("Input should", "is not valid (", "Invalid isoformat",
                        "invalid literal", "larger than"):
            assert english not in page
    assert await daemon.query("SELECT count(*) FROM sequences") == [(0,)]
    assert await daemon.query("SELECT count(*) FROM schedules") == [(0,)]
    assert await daemon.query("SELECT count(*) FROM interventions") == [(1,)]
