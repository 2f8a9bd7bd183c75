"""The operator's day in a real browser: find a case by its reply, read, assign, note, close."""

from __future__ import annotations

import asyncio
import hashlib
import os
from email.message import EmailMessage
from pathlib import Path

from admin_harness import add_employees, add_operator, customer_mail, log_in_browser, tiny_png
from aiosmtpd.controller import Controller
from daemon_harness import Daemon
from playwright.async_api import Page, expect
from smtp_sink import Captured, CaptureHandler

from nexusmail.clock import SystemClock
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.reply_tokens import load_reply_keys

PHOTO = tiny_png()
OPERATOR = "anna@firm.test"
LUCA, ION = "luca@firm.test", "ion@firm.test"
# Only Luca's reply (and the echo of it we send him) contains this word.
REPLY_WORD = "termocoppia"


async def mail_to(sink: CaptureHandler, recipient: str, within_s: float = 15) -> Captured:
    """The first mail the relay got for `recipient`, waiting for it if need be."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        for mail in sink.messages:
            if recipient in mail.rcpt_tos:
                return mail
        assert asyncio.get_running_loop().time() < deadline, f"no mail to {recipient}"
        await asyncio.sleep(0.05)


async def reply_as_technician(daemon: Daemon, assignment: Captured, text: str) -> None:
    """Answer the assignment mail from the technician's phone, with a photo."""
    original = assignment.message()
    reply = EmailMessage()
    reply["From"] = assignment.rcpt_tos[0]
    reply["To"] = original["Reply-To"]
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["In-Reply-To"] = reply["References"] = original["Message-ID"]
    reply.set_content(text)
    reply.add_attachment(PHOTO, maintype="image", subtype="png", filename="caldaia.png")
    code, _ = await daemon.send(reply.as_bytes(), sender=assignment.rcpt_tos[0],
                                recipients=[str(original["Reply-To"])])
    assert code == 250


async def open_cases(daemon: Daemon, relay: Controller) -> None:
    """#1 is the boiler; the others are there to be told apart from it."""
    cases = [
        ("cliente@example.it", "Rossi Srl", "Caldaia in blocco",
         "Buongiorno, la caldaia è in blocco (E04)."),
        ("bianchi@example.it", "Bar Bianchi", "Condizionatore rumoroso",
         "Fa un rumore strano di notte."),
        ("popescu@example.ro", "Popescu SRL", "Instalație centrală termică",
         "Vă rog o programare."),
        ("verdi@example.it", "Condominio Verdi", "Manutenzione annuale",
         "Quando potete passare?"),
    ]
    for sender, name, subject, text in cases:
        code, _ = await daemon.send(customer_mail(subject, text, sender=sender, name=name),
                                    sender=sender)
        assert code == 250
    keys = await asyncio.to_thread(load_reply_keys, daemon.settings)
    now = SystemClock().now()
    await daemon.running.store.write(lambda tx: assign(
        tx, 1, LUCA, now=now, settings=daemon.settings, reply_keys=keys))
    await reply_as_technician(daemon, await mail_to(relay.handler, LUCA),
                              f"Confermo, passo giovedì mattina con la {REPLY_WORD} nuova.")


async def test_operator_finds_reads_assigns_notes_and_closes(
    daemon: Daemon, relay: Controller, page: Page, tmp_path: Path, screenshot_dir: Path
) -> None:
    """Search by a reply's word, read the whole thread, assign, add a note, close."""
    await add_operator(daemon, OPERATOR)
    await add_employees(daemon, (LUCA, "Luca Bianchi", "it"), (ION, "Ion Popescu", "ro"))
    await open_cases(daemon, relay)

    await log_in_browser(page, OPERATOR)
    await expect(page.locator(".case")).to_have_count(4)
    await page.screenshot(path=screenshot_dir / "admin-list.png", full_page=True)

    await page.fill("input[name=q]", REPLY_WORD)
    await page.click("button:has-text('Filter')")
    await expect(page.locator(".case")).to_have_count(1)
    await page.click(".case a:has-text('Caldaia in blocco')")

    await expect(page.locator("h1")).to_contain_text("#1 Caldaia in blocco")
    await expect(page.locator(".kind-customer_mail")).to_contain_text("la caldaia è in blocco")
    await expect(page.locator(".kind-assignment_mail")).to_contain_text(LUCA)
    reply = page.locator(".kind-technician_reply")
    await expect(reply).to_contain_text(f"con la {REPLY_WORD} nuova")
    await expect(reply.locator(".state-confirmed")).to_be_visible()
    await expect(reply.locator(".ok")).to_have_text("verified")
    photo = reply.locator("img.preview")
    await expect(photo).to_be_visible()
    assert await photo.evaluate("img => img.complete && img.naturalWidth") == 160

    assign_form = page.locator("form[action$='/assign']")
    await assign_form.locator("select[name=employee_email]").select_option(ION)
    await page.click("button:has-text('Assign and mail them')")
    await expect(page.locator(".flash")).to_contain_text(f"Assigned {ION}")
    assignment = await mail_to(relay.handler, ION)
    assert "[#1]" in str(assignment.message()["Subject"])

    quote = os.urandom(30_000) + b"preventivo"
    upload = tmp_path / "preventivo ricambi.pdf"
    upload.write_bytes(quote)
    note_form = page.locator("form[action$='/notes']")
    await note_form.locator("textarea[name=text]").fill("Ricambio ordinato al fornitore.")
    await note_form.locator("input[name=file]").set_input_files(upload)
    await page.fill("input[name=register_ref]", "2026/0142")
    await page.click("button:has-text('Add note')")
    note = page.locator(".kind-note").last
    await expect(note).to_contain_text("Correspondence register: 2026/0142")
    async with page.expect_download() as download_info:
        await note.locator("a:has-text('preventivo ricambi.pdf')").click()
    download = await download_info.value
    saved = await download.path()
    assert hashlib.sha256(await asyncio.to_thread(saved.read_bytes)).digest() == \
        hashlib.sha256(quote).digest()
    await page.screenshot(path=screenshot_dir / "admin-thread.png", full_page=True)

    await page.click("button:has-text('Close the intervention')")
    await expect(page.locator(".flash")).to_contain_text("#1 closed")
    await expect(page.locator(".facts .state-closed")).to_be_visible()
    await expect(page.locator("button:has-text('Reopen the intervention')")).to_be_visible()
    assert await daemon.query("SELECT status FROM interventions WHERE number = 1") == [
        ("closed",)]
