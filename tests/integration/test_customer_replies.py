"""Operators answering the customer from the thread: over the API on a running daemon,
with what leaves captured at a real SMTP sink and the customer's answer mailed back."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_harness import add_operator, csrf_of, logged_in
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from postgres_server import PostgresCluster

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

CUSTOMER = "ana@example.ro"
PDF = b"%PDF-1.4 offerta\n" * 40


def customer_mail(subject: str, body: str, *, message_id: str,
                  in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Ana Pop <{CUSTOMER}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    msg.set_content(body)
    return msg.as_bytes()


async def api_client(daemon: Daemon) -> httpx.AsyncClient:
    token = await daemon.running.store.write(
        lambda tx: create_token(tx, "desk", SystemClock().now()))
    return httpx.AsyncClient(base_url=daemon.web_url + "/api/v1",
                             headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as running:
        yield running


async def open_case(daemon: Daemon, relay: Controller) -> None:
    first = customer_mail("Centrala nu pornește", "Instalația de încălzire e oprită.",
                          message_id="a1@example.ro")
    assert (await daemon.send(first, sender=CUSTOMER))[0] == 250
    second = customer_mail("Re: Centrala nu pornește", "Am încercat și resetarea.",
                           message_id="a2@example.ro", in_reply_to="a1@example.ro")
    assert (await daemon.send(second, sender=CUSTOMER))[0] == 250
    await relay.handler.wait_for_async(1)  # the acknowledgement
    relay.handler.clear()


async def test_reply_reaches_the_customer_threaded_and_their_answer_comes_back(
    daemon: Daemon, relay: Controller
) -> None:
    """The operator's reply with a file leaves as a personal mail in the customer's
    language, answering their latest mail with the earlier ones in References and the
    case tag in the subject; the thread shows it as `operator_reply` with the file; the
    customer's answer to it (In-Reply-To only, subject changed) joins the same case."""
    await open_case(daemon, relay)
    async with await api_client(daemon) as api:
        response = await api.post(
            "/interventions/1/replies",
            data={"text": "Trimitem un tehnician mâine dimineață."},
            files={"file": ("oferta.pdf", PDF, "application/pdf")})
        assert response.status_code == 201, response.text
        message = response.json()
        assert message["kind"] == "operator_reply"
        assert message["author"] == "api:desk"
        assert [a["sha256"] for a in message["attachments"]] == [hashlib.sha256(PDF).hexdigest()]

        [sent] = await relay.handler.wait_for_async(1)
        mail = sent.message()
        assert mail["To"] == CUSTOMER
        assert mail["Subject"] == "Re: [#1] Centrala nu pornește"
        assert mail["In-Reply-To"] == "<a2@example.ro>"
        assert mail["References"] == "<a1@example.ro> <a2@example.ro>"
        assert mail["Auto-Submitted"] is None  # a person wrote it
        assert mail["Content-Language"] == "ro"
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content().replace("\r\n", "\n")
        assert "Trimitem un tehnician mâine dimineață." in text
        assert "[#1]" in text.split("-- \n", 1)[1]  # the Romanian signature
        [pdf] = list(mail.iter_attachments())
        assert pdf.get_filename() == "oferta.pdf"
        assert pdf.get_content() == PDF

        answer = customer_mail("Mulțumesc", "Perfect, vă aștept.", message_id="a3@example.ro",
                               in_reply_to=mail["Message-ID"].strip("<>"))
        assert (await daemon.send(answer, sender=CUSTOMER))[0] == 250
        detail = (await api.get("/interventions/1")).json()
        kinds = [m["kind"] for m in detail["messages"]]
        assert kinds.count("customer_mail") == 3
        assert kinds.count("operator_reply") == 1
        assert (await api.get("/interventions")).json()["total"] == 1
        shown = next(m for m in detail["messages"] if m["kind"] == "operator_reply")
        assert shown["author"] == "api:desk"


async def test_reply_and_close_in_one_request(daemon: Daemon, relay: Controller) -> None:
    """JSON `{text, close: true}` sends the reply and closes the case after it; a second
    close-reply is a 409 and sends nothing more."""
    await open_case(daemon, relay)
    async with await api_client(daemon) as api:
        response = await api.post("/interventions/1/replies",
                                  json={"text": "Rezolvat, închidem.", "close": True})
        assert response.status_code == 201, response.text
        detail = (await api.get("/interventions/1")).json()
        assert detail["status"] == "closed"
        kinds = [m["kind"] for m in detail["messages"]]
        assert kinds.index("operator_reply") < kinds.index("status_change")
        await relay.handler.wait_for_async(1)
        again = await api.post("/interventions/1/replies",
                               json={"text": "Încă o dată.", "close": True})
        assert again.status_code == 409
        outbox = await daemon.query("SELECT count(*) FROM outbox WHERE kind = 'operator_reply'")
        assert outbox == [(1,)]


@pytest.mark.parametrize(("body", "status", "error"), [
    ({"text": "   "}, 422, "text"),
    ({"text": "x", "close": "yes"}, 422, "close"),
    ({"text": "x", "cc": "a@b.c"}, 422, "cc"),
])
async def test_bad_replies_are_refused_and_send_nothing(
    daemon: Daemon, relay: Controller, body: dict[str, Any], status: int, error: str
) -> None:
    """Empty text, a non-boolean close or an unknown field: a clear error naming the
    field, and nothing written or queued."""
    await open_case(daemon, relay)
    async with await api_client(daemon) as api:
        response = await api.post("/interventions/1/replies", json=body)
        assert response.status_code == status, response.text
        assert response.json()["error"].startswith(error)
        missing = await api.post("/interventions/99/replies", json={"text": "x"})
        assert missing.status_code == 404
    assert await daemon.query("SELECT count(*) FROM outbox WHERE kind = 'operator_reply'") \
        == [(0,)]


async def test_reply_on_postgresql(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """The same reply, threading and close on PostgreSQL."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url})
    async with running_daemon(settings) as daemon:
        await open_case(daemon, relay)
        async with await api_client(daemon) as api:
            response = await api.post("/interventions/1/replies",
                                      json={"text": "Venim mâine.", "close": True})
            assert response.status_code == 201, response.text
            [sent] = await relay.handler.wait_for_async(1)
            assert sent.message()["In-Reply-To"] == "<a2@example.ro>"
            assert (await api.get("/interventions/1")).json()["status"] == "closed"


async def test_reply_from_the_page_signs_with_the_operators_name(
    daemon: Daemon, relay: Controller
) -> None:
    """The thread page's form (CSRF-checked) sends the reply signed with the logged-in
    operator's name, shows it on the thread, and closes the case when ticked; a form
    without its CSRF token sends nothing."""
    await open_case(daemon, relay)
    await add_operator(daemon, "giulia@firm.test")
    async with logged_in(daemon, "giulia@firm.test") as client:
        page = await client.get("/interventions/1")
        assert 'action="/interventions/1/replies"' in page.text
        forged = await client.post("/interventions/1/replies", data={"text": "x"})
        assert forged.status_code == 403
        sent = await client.post("/interventions/1/replies", data={
            "csrf_token": csrf_of(page.text), "text": "Venim mâine la 9.", "close": "on"})
        assert sent.status_code == 303, sent.text
        [mail] = await relay.handler.wait_for_async(1)
        body = mail.message().get_body(("plain",))
        assert body is not None
        signature = body.get_content().replace("\r\n", "\n").split("-- \n", 1)[1]
        assert signature.startswith("Giulia\nFirm\n")
        thread = (await client.get("/interventions/1")).text
        assert "Reply to the customer" in thread
        assert "Venim mâine la 9." in thread
    assert await daemon.query("SELECT status FROM interventions") == [("closed",)]


async def test_a_canned_reply_fills_the_box_and_a_firm_adds_its_own(
    tmp_path: Path, relay: Controller
) -> None:
    """The thread page offers the canned replies of every language; picking one fills
    the reply box with its text for this case (title line left out); a file the firm
    puts in `[mail] templates_dir` is offered too, and an unknown name fills nothing."""
    own = tmp_path / "templates" / "mail" / "ro" / "canned"
    own.mkdir(parents=True)
    (own / "programare.txt.j2").write_text(
        "Programare confirmată\nVenim la {{ customer_name }} pentru nr. {{ number }}.\n",
        encoding="utf-8")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             mail={"templates_dir": str(tmp_path / "templates")})
    async with running_daemon(settings) as daemon:
        await open_case(daemon, relay)
        await add_operator(daemon, "giulia@firm.test")
        async with logged_in(daemon, "giulia@firm.test") as client:
            page = (await client.get("/interventions/1")).text
            assert 'value="it/tecnico_in_arrivo"' in page
            assert 'value="ro/programare"' in page
            picked = (await client.get("/interventions/1",
                                       params={"canned": "it/tecnico_in_arrivo"})).text
            box = picked.split('name="text" rows="5" required>', 1)[1].split("</textarea>")[0]
            assert box.startswith("Gentile Ana Pop,")
            assert "intervento n. 1" in box
            assert "Tecnico in arrivo" not in box
            firm = (await client.get("/interventions/1", params={"canned": "ro/programare"}))
            assert "Venim la Ana Pop pentru nr. 1." in firm.text
            for bad in ("it/../../secret", "xx/nothing", "it/missing"):
                unknown = (await client.get("/interventions/1", params={"canned": bad})).text
                assert 'required></textarea>' in unknown
