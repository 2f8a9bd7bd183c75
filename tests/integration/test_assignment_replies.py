"""End to end: assign two technicians, capture their mails, reply, see the thread."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import add_operator, csrf_of, logged_in
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from smtp_sink import Captured, CaptureHandler

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.reply_tokens import load_reply_keys

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40  # a small "JPEG"


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"operator_addresses": ["dispatch@firm.test"]})
    async with running_daemon(settings) as running:
        yield running


class Case:
    """An intervention with two assigned technicians, and the mails they got."""

    def __init__(self, daemon: Daemon, sink: CaptureHandler) -> None:
        self.daemon = daemon
        self.sink = sink
        self.token = ""
        self.mails: dict[str, Captured] = {}

    async def open(self) -> None:
        store = self.daemon.running.store
        clock_now = SystemClock().now()
        self.token = await store.write(partial(create_token, name="test", now=clock_now))
        for email, name, lang in [("luca@firm.test", "Luca Bianchi", "it"),
                                  ("ion@firm.test", "Ion Popescu", "ro")]:
            await store.write(partial(add_employee, email=email, name=name, language=lang,
                                      now=clock_now))
        reply = await self.api("POST", "/interventions", json={
            "customer_email": "cliente@example.it", "customer_name": "Rossi Srl",
            "subject": "Caldaia in blocco", "description": "Codice errore E04."})
        assert reply.status_code == 201
        keys = load_reply_keys(self.daemon.settings)
        for email in ("luca@firm.test", "ion@firm.test"):
            await store.write(partial(assign, number=1, employee_email=email, now=clock_now,
                                      settings=self.daemon.settings, reply_keys=keys))
        captured = await self.sink.wait_for_async(3, within_s=15)
        for mail in captured:
            self.mails[mail.rcpt_tos[0]] = mail

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.daemon.web_url + "/api/v1") as client:
            return await client.request(method, path, headers={
                "Authorization": f"Bearer {self.token}"}, **kwargs)

    async def reply(self, to_employee: str, body: str, *, sender: str | None = None,
                    photo: bool = False, keep_reply_to: bool = True,
                    keep_references: bool = True) -> int:
        original = self.mails[to_employee].message()
        msg = EmailMessage()
        msg["From"] = sender or to_employee
        reply_to = original["Reply-To"] if keep_reply_to else SUPPORT
        msg["To"] = reply_to
        msg["Subject"] = "Re: " + str(original["Subject"])
        if keep_references:
            msg["In-Reply-To"] = original["Message-ID"]
            msg["References"] = original["Message-ID"]
        quoted = "\n".join("> " + line for line in original.get_body(
            ("plain",)).get_content().splitlines())
        msg.set_content(f"{body}\n\nOn Mon, 2 Mar 2026 at 09:00, Firm <{SUPPORT}> wrote:\n"
                        f"{quoted}\n")
        if photo:
            msg.add_attachment(PHOTO, maintype="image", subtype="jpeg", filename="caldaia.jpg")
        code, _ = await self.daemon.send(msg.as_bytes(), sender=sender or to_employee,
                                         recipients=[str(reply_to)])
        return code

    async def intervention(self) -> dict[str, Any]:
        reply = await self.api("GET", "/interventions/1")
        assert reply.status_code == 200
        data: dict[str, Any] = reply.json()
        return data

    async def assignment_rows(self) -> dict[str, tuple[str, str]]:
        rows = await self.daemon.query(
            "SELECT e.email, a.status, a.reason FROM assignments a"
            " JOIN employees e ON e.id = a.employee_id")
        return {row[0]: (row[1], row[2]) for row in rows}


@pytest.fixture
async def case(daemon: Daemon, relay: Controller) -> Case:
    opened = Case(daemon, relay.handler)
    await opened.open()
    return opened


async def test_assignment_mails_carry_the_case_and_a_signed_reply_to(case: Case) -> None:
    """Each technician gets a mail in their language with the case and a signed Reply-To."""
    luca = case.mails["luca@firm.test"].message()
    ion = case.mails["ion@firm.test"].message()
    assert "[#1]" in str(luca["Subject"])
    assert luca["Reply-To"].addresses[0].username.startswith("support+a")
    assert luca["Reply-To"] != ion["Reply-To"]
    assert "Caldaia in blocco" in luca.get_body(("plain",)).get_content()
    assert luca["Content-Language"] == "it"
    assert ion["Content-Language"] == "ro"


async def test_replies_confirm_and_reject_into_the_thread(case: Case) -> None:
    """One confirms with a photo, one rejects in Romanian: states, thread and bytes right."""
    assert await case.reply("luca@firm.test", "Confermo, passo giovedì mattina.",
                            photo=True) == 250
    assert await case.reply("ion@firm.test", "Refuz\nSunt în concediu săptămâna asta.") == 250
    states = await case.assignment_rows()
    assert states["luca@firm.test"][0] == "confirmed"
    assert states["ion@firm.test"][0] == "rejected"
    assert "concediu" in states["ion@firm.test"][1]
    data = await case.intervention()
    replies = [m for m in data["messages"] if m["kind"] == "technician_reply"]
    assert [(m["from"], m["verdict"], m["verified"]) for m in replies] == [
        ("luca@firm.test", "confirmed", True), ("ion@firm.test", "rejected", True)]
    assert replies[0]["body_text"] == "Confermo, passo giovedì mattina."
    assert "wrote:" not in replies[1]["body_text"], "the quote is stripped"
    [photo] = replies[0]["attachments"]
    assert photo["sha256"] == hashlib.sha256(PHOTO).hexdigest()
    download = await case.api("GET", f"/attachments/{photo['id']}")
    assert hashlib.sha256(download.content).hexdigest() == photo["sha256"]
    # The echo to each technician and the rejection notice to the operators go out.
    echoed = await case.sink.wait_for_async(6, within_s=15)
    recipients = sorted(m.rcpt_tos[0] for m in echoed[3:])
    assert recipients == ["dispatch@firm.test", "ion@firm.test", "luca@firm.test"]


async def test_a_spoofed_reply_with_a_valid_token_changes_nothing(case: Case) -> None:
    """Someone else answering with Luca's token is kept, unverified, and decides nothing."""
    assert await case.reply("luca@firm.test", "Rifiuto", sender="mallory@evil.test") == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"
    data = await case.intervention()
    [reply] = [m for m in data["messages"] if m["kind"] == "technician_reply"]
    assert reply["verified"] is False
    outcome = await case.daemon.query("SELECT outcome, reason FROM inbound ORDER BY id DESC")
    assert outcome[0] == ("technician_reply", "sender is not the assigned employee")


async def test_a_reply_from_the_technicians_plus_address_changes_nothing(
        case: Case) -> None:
    """Only the assigned employee's exact address acts: the same mailbox's plus-address
    (luca+casa@), a look-alike anyone can write in a From, is kept and decides nothing."""
    assert await case.reply("luca@firm.test", "Confermo", sender="luca+casa@firm.test") == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"
    outcome = await case.daemon.query("SELECT outcome, reason FROM inbound ORDER BY id DESC")
    assert outcome[0] == ("technician_reply", "sender is not the assigned employee")


async def test_reply_matched_without_token_by_message_id(case: Case) -> None:
    """A client that drops Reply-To still matches by In-Reply-To, from the right sender."""
    assert await case.reply("ion@firm.test", "Da, confirm.", keep_reply_to=False) == 250
    assert (await case.assignment_rows())["ion@firm.test"][0] == "confirmed"


async def test_unclear_reply_flags_and_changes_no_decision(case: Case) -> None:
    """A reply that says neither is recorded as unclear and flags the assignment."""
    assert await case.reply("luca@firm.test", "Chi è il cliente? Chiamami.") == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "unclear"
    assert await case.reply("luca@firm.test", "OK confermo") == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "confirmed"


async def test_out_of_office_never_decides(case: Case) -> None:
    """An auto-reply to the assignment mail is noise: no verdict, no mail."""
    original = case.mails["luca@firm.test"].message()
    msg = EmailMessage()
    msg["From"] = "luca@firm.test"
    msg["To"] = original["Reply-To"]
    msg["Subject"] = "Risposta automatica: " + str(original["Subject"])
    msg["Auto-Submitted"] = "auto-replied"
    msg["In-Reply-To"] = original["Message-ID"]
    msg.set_content("Sono fuori ufficio, confermo il rientro lunedì.")
    assert (await case.daemon.send(msg.as_bytes(), sender="luca@firm.test",
                                   recipients=[str(original["Reply-To"])]))[0] == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"


async def test_late_reply_after_close_is_recorded_not_acted_on(case: Case) -> None:
    """Once closed, a technician's reply is kept on the thread but decides nothing."""
    closed = await case.api("POST", "/interventions/1/close", json={"note": "done"})
    assert closed.status_code == 200
    assert await case.reply("luca@firm.test", "Confermo") == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"
    data = await case.intervention()
    [reply] = [m for m in data["messages"] if m["kind"] == "technician_reply"]
    assert reply["verdict"] == "confirmed"


async def test_later_assignment_carries_only_the_customers_files(case: Case) -> None:
    """A technician's site photo is on the thread, but not sent on to the next one."""
    assert await case.reply("luca@firm.test", "Confermo", photo=True) == 250
    store = case.daemon.running.store
    now = SystemClock().now()
    await store.write(partial(add_employee, email="ana@firm.test", name="Ana", language="en",
                              now=now))
    await store.write(partial(assign, number=1, employee_email="ana@firm.test", now=now,
                              settings=case.daemon.settings,
                              reply_keys=load_reply_keys(case.daemon.settings)))
    mails = await case.sink.wait_for_async(5, within_s=15)
    [to_ana] = [m for m in mails if m.rcpt_tos == ["ana@firm.test"]]
    assert list(to_ana.message().iter_attachments()) == []


async def test_a_megabyte_reply_line_stalls_nothing(tmp_path: Path, relay: Controller) -> None:
    """A technician's reply that is one 1 MB line of verdict words gets its 250 within
    2 s, and a customer's mail sent meanwhile is not held behind it by more than 1 s
    (reading a reply is linear, capped, and done before the store's writer)."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             ingest={"parse_processes": 1})
    async with running_daemon(settings) as daemon:
        case = Case(daemon, relay.handler)
        await case.open()
        customer = EmailMessage()
        customer["From"] = "altro@example.it"
        customer["To"] = SUPPORT
        customer["Subject"] = "Perdita d'acqua"
        customer.set_content("Il rubinetto perde.")

        async def timed(sending: Any) -> float:
            started = asyncio.get_running_loop().time()
            assert await sending == 250
            return asyncio.get_running_loop().time() - started

        alone = await timed(_code(daemon.send(customer.as_bytes())))
        huge = "confermo rifiuto ok no si da " * 36_000  # ~1 MB, not one line break
        reply_s, during_s = await asyncio.gather(
            timed(case.reply("luca@firm.test", huge)),
            timed(_code(daemon.send(customer.as_bytes().replace(b"Perdita", b"Tubo")))))
        assert reply_s < 2.0
        assert during_s < alone + 1.0
        states = await case.assignment_rows()
        assert states["luca@firm.test"][0] == "unclear"  # its opening says both


async def _code(sending: Any) -> int:
    code, _ = await sending
    return int(code)


def raw_reply(case: Case, employee: str, body: str, *, from_lines: list[str],
              token: bool = True, refs: bool = True, subject_tag: bool = True,
              date: str | None = None, extra: str = "") -> bytes:
    """A reply written byte by byte, so its From can be any trick a forger uses."""
    original = case.mails[employee].message()
    to = str(original["Reply-To"]) if token else SUPPORT
    head = [*(f"From: {line}" for line in from_lines), f"To: {to}",
            "Subject: Re: " + (str(original["Subject"]) if subject_tag else "intervento"),
            f"Message-ID: <{_id_part(body, from_lines, date)}@phone.example>"]
    if refs:
        head.append(f"In-Reply-To: {original['Message-ID']}")
    if date:
        head.append(f"Date: {date}")
    return ("\r\n".join(head) + "\r\n" + extra + "\r\n" + body + "\r\n").encode()


def _id_part(body: str, from_lines: list[str], date: str | None) -> str:
    return hashlib.sha256(f"{body}{from_lines}{date}".encode()).hexdigest()[:20]


async def send_raw(case: Case, raw: bytes, rcpt: str) -> int:
    code, _ = await case.daemon.send(raw, sender="anyone@evil.example", recipients=[rcpt])
    return code


async def test_a_forged_from_with_the_subject_tag_decides_nothing(case: Case) -> None:
    """From: the technician and [#1] in the subject, but neither the signed Reply-To nor
    the assignment mail's Message-ID: kept on the thread, unverified, assignment pending."""
    raw = raw_reply(case, "luca@firm.test", "Rifiuto, non vengo.",
                    from_lines=["Luca Bianchi <luca@firm.test>"], token=False, refs=False)
    assert await send_raw(case, raw, SUPPORT) == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"
    data = await case.intervention()
    [reply] = [m for m in data["messages"] if m["kind"] == "technician_reply"]
    assert (reply["verified"], reply["extra"]["matched_by"]) == (False, "tag")
    [(reason,)] = await case.daemon.query("SELECT reason FROM inbound ORDER BY id DESC LIMIT 1")
    assert "subject tag only" in reason


@pytest.mark.parametrize("from_lines", [
    ["luca@firm.test <evil@evil.example>"],
    ["<luca@firm.test>evil@evil.example"],
    ["luca@firm.test, evil@evil.example"],
    ["Luca <luca@firm.test>", "Evil <evil@evil.example>"],
])
async def test_from_parser_tricks_never_act(case: Case, from_lines: list[str]) -> None:
    """With the right token even, a From that parsers could read as someone else is
    recorded as unverified and decides nothing."""
    raw = raw_reply(case, "luca@firm.test", "Confermo.", from_lines=from_lines)
    to = str(case.mails["luca@firm.test"].message()["Reply-To"])
    assert await send_raw(case, raw, to) == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"
    [(outcome, reason)] = await case.daemon.query(
        "SELECT outcome, reason FROM inbound ORDER BY id DESC LIMIT 1")
    assert outcome == "technician_reply"
    assert reason.startswith(("sender in doubt", "sender is not the assigned employee"))


async def test_a_trusted_dmarc_failure_forbids_acting(tmp_path: Path, relay: Controller) -> None:
    """When the firm's own MTA ([security] trusted_authserv_id) says DMARC failed for the
    From domain, the reply is kept but decides nothing; another server's say-so is ignored."""
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             security={"trusted_authserv_id": "mx.firm.test"})
    async with running_daemon(settings) as daemon:
        case = Case(daemon, relay.handler)
        await case.open()
        to = str(case.mails["luca@firm.test"].message()["Reply-To"])
        failed = "Authentication-Results: mx.firm.test; dmarc=fail header.from=firm.test\r\n"
        raw = raw_reply(case, "luca@firm.test", "Confermo.", from_lines=["luca@firm.test"],
                        extra=failed)
        assert await send_raw(case, raw, to) == 250
        assert (await case.assignment_rows())["luca@firm.test"][0] == "pending"
        forged = failed.replace("mx.firm.test", "mx.evil.example")
        raw = raw_reply(case, "luca@firm.test", "Confermo!", from_lines=["luca@firm.test"],
                        extra=forged)
        assert await send_raw(case, raw, to) == 250
        assert (await case.assignment_rows())["luca@firm.test"][0] == "confirmed"


async def test_an_earlier_answer_sent_again_does_not_flip_the_decision(case: Case) -> None:
    """Confirm, then reject: re-sending the confirmation with a new Message-ID changes
    nothing, whether it keeps its old Date (older than the rejection) or claims a new one
    (the same answer as one already applied)."""
    to = str(case.mails["luca@firm.test"].message()["Reply-To"])
    early, later, newest = ("Mon, 2 Mar 2026 09:00:00 +0100", "Mon, 2 Mar 2026 10:00:00 +0100",
                            "Mon, 2 Mar 2026 11:00:00 +0100")
    confirm = raw_reply(case, "luca@firm.test", "Confermo.", from_lines=["luca@firm.test"],
                        date=early)
    assert await send_raw(case, confirm, to) == 250
    reject = raw_reply(case, "luca@firm.test", "Rifiuto, imprevisto.",
                       from_lines=["luca@firm.test"], date=later)
    assert await send_raw(case, reject, to) == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "rejected"
    replayed = confirm.replace(b"Message-ID: <", b"Message-ID: <again")
    assert await send_raw(case, replayed, to) == 250
    redated = raw_reply(case, "luca@firm.test", "Confermo.", from_lines=["luca@firm.test"],
                        date=newest)
    assert await send_raw(case, redated, to) == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "rejected"
    reasons = [r for (r,) in await case.daemon.query(
        "SELECT reason FROM inbound WHERE outcome = 'technician_reply' ORDER BY id")]
    assert reasons[2:] == ["older than the answer already applied",
                           "the same answer as one already applied (a replay?)"]


async def test_a_date_in_the_future_counts_as_its_arrival(case: Case) -> None:
    """A confirmation dated years ahead does not outrank the rejection that arrives
    after it: a Date later than the arrival counts as the arrival."""
    to = str(case.mails["luca@firm.test"].message()["Reply-To"])
    ahead = raw_reply(case, "luca@firm.test", "Confermo.", from_lines=["luca@firm.test"],
                      date="Thu, 1 Jan 2037 09:00:00 +0000")
    assert await send_raw(case, ahead, to) == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "confirmed"
    undated = raw_reply(case, "luca@firm.test", "Rifiuto, imprevisto.",
                        from_lines=["luca@firm.test"])
    assert await send_raw(case, undated, to) == 250
    assert (await case.assignment_rows())["luca@firm.test"][0] == "rejected"


async def test_the_operator_applies_a_kept_reply_with_one_click(case: Case) -> None:
    """A tag-only reply is offered on the thread page with an "Apply" button; one click
    (or the API) applies its verdict, says who did, and cannot be applied twice."""
    raw = raw_reply(case, "luca@firm.test", "Rifiuto, sono in ferie.",
                    from_lines=["luca@firm.test"], token=False, refs=False)
    assert await send_raw(case, raw, SUPPORT) == 250
    [(message_id,)] = await case.daemon.query(
        "SELECT id FROM messages WHERE kind = 'technician_reply'")
    await add_operator(case.daemon, "anna@firm.test")
    async with logged_in(case.daemon, "anna@firm.test") as page:
        thread = await page.get("/interventions/1")
        assert f'action="/messages/{message_id}/apply"' in thread.text
        assert "Apply: rejected" in thread.text
        # Why it was kept is on the page, not only in a tooltip.
        assert "not acted on: matched by the subject tag only" in thread.text
        applied = await page.post(f"/messages/{message_id}/apply",
                                  data={"csrf_token": csrf_of(thread.text)})
        assert applied.status_code == 303
        after = (await page.get("/interventions/1")).text
        assert "Apply: rejected" not in after
        assert "not acted on:" not in after
    assert (await case.assignment_rows())["luca@firm.test"] == ("rejected", "sono in ferie.")
    again = await case.api("POST", f"/messages/{message_id}/apply")
    assert again.status_code == 409
    data = await case.intervention()
    [reply] = [m for m in data["messages"] if m["kind"] == "technician_reply"]
    assert reply["extra"]["applied_by"] == "operator:anna@firm.test"
