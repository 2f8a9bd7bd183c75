"""Admin pages over plain HTTP against the real daemon: entry, thread, files, schedules."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from admin_harness import add_employees, add_operator, csrf_of, customer_mail, logged_in
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon

from nexusmail.clock import SystemClock
from nexusmail.mail.html import SANITIZER_VERSION
from nexusmail.tickets.cases import NewMessage, add_message
from nexusmail.tickets.models import Direction, MessageKind
from nexusmail.tickets.recurrence import Interval
from nexusmail.tickets.schedules import ScheduleSpec, create_schedule

OPERATOR = "anna@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, OPERATOR)
        yield running


@pytest.fixture
async def client(daemon: Daemon) -> AsyncIterator[httpx.AsyncClient]:
    async with logged_in(daemon, OPERATOR) as opened:
        yield opened


async def test_quick_entry_opens_a_case_and_assigns(daemon: Daemon,
                                                    client: httpx.AsyncClient) -> None:
    """A phone request typed in opens an intervention, assigned, with its mail queued."""
    await add_employees(daemon, ("luca@firm.test", "Luca Bianchi", "it"))
    form = await client.get("/interventions/new")
    reply = await client.post("/interventions/new", data={
        "csrf_token": csrf_of(form.text), "customer_email": "Verdi@Example.it",
        "customer_name": "Condominio Verdi", "subject": "Ascensore fermo",
        "description": "Chiamata delle 9:10: ascensore fermo al piano 3.",
        "request_type": "Guasto", "priority": "urgent", "desired_from": "2026-03-04",
        "assignees": "luca@firm.test"})
    assert reply.status_code == 303
    assert reply.headers["location"] == "/interventions/1"
    page = await client.get("/interventions/1")
    assert "Intervention #1 opened." in page.text
    assert "Request taken by an operator" in page.text
    assert await daemon.query("SELECT priority, request_type FROM interventions") == [
        ("urgent", "Guasto")]
    assert await daemon.query("SELECT kind, recipient FROM outbox ORDER BY id") == [
        ("acknowledgement", "verdi@example.it"), ("assignment", "luca@firm.test")]


async def test_quick_entry_shows_what_is_wrong_and_keeps_the_input(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """A bad address or period is named on the form by our own check's words (not
    pydantic's), the typed text kept; nothing made."""
    form = await client.get("/interventions/new")
    reply = await client.post("/interventions/new", data={
        "csrf_token": csrf_of(form.text), "customer_email": "not-an-address",
        "subject": "Ascensore <fermo>", "description": "x", "desired_from": "2026-03-04",
        "desired_to": "2026-03-01"})
    assert reply.status_code == 422
    assert "customer_email: is not an email address" in reply.text
    assert "desired_to: is before desired_from" in reply.text
    assert 'value="Ascensore &lt;fermo&gt;"' in reply.text
    assert await daemon.query("SELECT count(*) FROM interventions") == [(0,)]


async def test_thread_of_500_messages_renders(daemon: Daemon, client: httpx.AsyncClient) -> None:
    """A long thread renders whole on request, in time order, in well under a second;
    by default the first mail and the latest 50 messages, with the rest behind a link."""
    assert (await daemon.send(customer_mail("Impianto", "Primo messaggio.")))[0] == 250
    now = SystemClock().now()

    def many(tx: sqlite3.Connection) -> None:
        for n in range(500):
            add_message(tx, 1, NewMessage(
                kind=MessageKind.NOTE, direction=Direction.INTERNAL, author="test",
                body_text=f"nota numero {n}", body_html=f"<p>nota <b>{n}</b></p>"
                if n % 10 == 0 else None), now=now)

    await daemon.running.store.write(many)
    started = time.perf_counter()
    page = await client.get("/interventions/1?all=1")
    elapsed = time.perf_counter() - started
    assert page.status_code == 200
    assert page.text.count('class="entry ') == 502  # the mail, the ack, 500 notes
    assert page.text.index("nota numero 0<") < page.text.index("nota numero 499<")
    assert page.text.count("<iframe sandbox srcdoc=") == 50  # every tenth note
    assert elapsed < 1.0
    latest = (await client.get("/interventions/1")).text
    assert latest.count('class="entry ') == 52  # the mail, the link, the latest 50
    assert "Primo messaggio." in latest
    assert "nota numero 449<" not in latest
    assert latest.index("nota numero 450<") < latest.index("nota numero 499<")
    assert "451 earlier messages are not shown." in latest


async def test_mail_html_is_sanitized_once_and_shown_as_stored(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """Ingest stores the sanitizer's version with the HTML and the page shows it as
    stored; HTML not made by the current sanitizer is sanitized on first view and kept."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "cliente@example.it", SUPPORT, "Caldaia"
    mail.set_content("Vedi sotto.")
    mail.add_alternative("<p>La <b>caldaia</b> perde.</p>", subtype="html")
    assert (await daemon.send(mail.as_bytes()))[0] == 250
    assert await daemon.query(
        "SELECT html_sanitizer FROM messages WHERE body_html IS NOT NULL") == [
        (SANITIZER_VERSION,)]
    now = SystemClock().now()

    def notes(tx: sqlite3.Connection) -> None:
        # As stored by the current sanitizer: shown without a second pass (which would
        # drop the data- attribute).
        add_message(tx, 1, NewMessage(
            kind=MessageKind.NOTE, direction=Direction.INTERNAL, author="test",
            body_html='<p data-stored="as-is">corrente</p>',
            html_sanitizer=SANITIZER_VERSION), now=now)
        # From an older sanitizer (or none): sanitized when first shown.
        add_message(tx, 1, NewMessage(
            kind=MessageKind.NOTE, direction=Direction.INTERNAL, author="test",
            body_html='<p onclick="steal()">vecchia</p><script>alert(1)</script>',
            html_sanitizer=SANITIZER_VERSION - 1), now=now)

    await daemon.running.store.write(notes)
    page = await client.get("/interventions/1")
    assert page.status_code == 200
    assert "data-stored" in page.text
    assert "vecchia" in page.text
    assert "steal()" not in page.text
    assert "alert(1)" not in page.text
    assert await daemon.query(
        "SELECT body_html, html_sanitizer FROM messages WHERE body_html LIKE '%vecchia%'"
    ) == [("<p>vecchia</p>", SANITIZER_VERSION)]


async def test_files_download_as_attachments_never_rendered(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    """Attachments: Content-Disposition attachment, nosniff; HTML served as bytes; the
    original mail as .eml; only raster images get a preview."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "cliente@example.it", SUPPORT, "Allegati"
    mail.set_content("Vedi allegati.")
    page_html = b"<script>alert(1)</script>"
    mail.add_attachment(page_html, maintype="text", subtype="html", filename="pagina.html")
    mail.add_attachment(b"\x89PNG fake", maintype="image", subtype="png", filename="foto.png")
    raw = mail.as_bytes()
    assert (await daemon.send(raw))[0] == 250
    rows = await daemon.query("SELECT id, filename FROM attachments ORDER BY id")
    ids = {name: attachment_id for attachment_id, name in rows}

    html = await client.get(f"/attachments/{ids['pagina.html']}")
    assert html.content == page_html
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment;")
    assert html.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in html.headers["content-security-policy"]
    assert (await client.get(f"/attachments/{ids['pagina.html']}/preview")).status_code == 404
    preview = await client.get(f"/attachments/{ids['foto.png']}/preview")
    assert preview.headers["content-type"] == "image/png"
    assert preview.headers["x-content-type-options"] == "nosniff"

    [(message_id,)] = await daemon.query(
        "SELECT id FROM messages WHERE kind = 'customer_mail'")
    original = await client.get(f"/messages/{message_id}/raw")
    # SMTP carries lines ending in CRLF; the mail is otherwise kept byte for byte.
    assert original.content.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert original.headers["content-disposition"].startswith("attachment;")
    assert (await client.get("/attachments/999")).status_code == 404


async def test_refusals_are_pages_that_say_why(daemon: Daemon,
                                               client: httpx.AsyncClient) -> None:
    """A missing case is 404; assigning someone twice is 409 naming them."""
    assert (await client.get("/interventions/77")).status_code == 404
    assert (await client.get("/interventions/99999999999999999999")).status_code == 404
    await add_employees(daemon, ("luca@firm.test", "Luca Bianchi", "it"))
    assert (await daemon.send(customer_mail("Caldaia", "In blocco.")))[0] == 250
    token = csrf_of((await client.get("/interventions/1")).text)
    first = await client.post("/interventions/1/assign", data={
        "csrf_token": token, "employee_email": "luca@firm.test"})
    assert first.status_code == 303
    again = await client.post("/interventions/1/assign", data={
        "csrf_token": token, "employee_email": "luca@firm.test"})
    assert again.status_code == 409
    assert "luca@firm.test is already assigned to 1" in again.text


async def test_employees_and_schedules_pages(daemon: Daemon, client: httpx.AsyncClient) -> None:
    """Employees are listed; a schedule shows its next dates and when each opens."""
    await add_employees(daemon, ("luca@firm.test", "Luca Bianchi", "it"))
    assert "Luca Bianchi" in (await client.get("/employees")).text
    now = SystemClock().now()
    today = now.date()
    first = date(today.year + 1, 1, 10)
    spec = ScheduleSpec(customer_email="verdi@example.it", customer_name="Condominio Verdi",
                        subject="Manutenzione caldaia", interval=Interval.MONTHLY,
                        first_date=first, lead_days=3, contract_ref="C-12")
    schedule_id = await daemon.running.store.write(
        lambda tx: create_schedule(tx, spec, today=today, now=now))
    listing = await client.get("/schedules")
    assert "Manutenzione caldaia" in listing.text
    assert f"next 10 Jan {first.year} (opens 7 Jan {first.year})" in listing.text
    detail = await client.get(f"/schedules/{schedule_id}")
    assert detail.status_code == 200
    assert f"<td>10 Jan {first.year}</td><td>7 Jan {first.year}</td>" in detail.text
    assert detail.text.count("<tr><td>") == 12
    assert (await client.get("/schedules/999")).status_code == 404
