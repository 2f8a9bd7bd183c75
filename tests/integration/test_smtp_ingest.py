"""End to end over real sockets: mail in over SMTP, interventions out, acks at a sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from smtp_sink import CaptureHandler
from store_faults import reject_inbound_subjects, writes_refused

from nexusmail.clock import FakeClock
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import queries, search
from nexusmail.tickets.attention import Attention
from nexusmail.tickets.cases import close_intervention


def customer_mail(subject: str = "Caldaia guasta", body: str = "La caldaia non parte.",
                  *, sender: str = "mario.rossi@example.it", message_id: str | None = None,
                  in_reply_to: str | None = None, extra: dict[str, str] | None = None,
                  to: str = SUPPORT) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain="example.it")
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for name, value in (extra or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as running:
        yield running


def parse(raw: bytes) -> Any:
    return email.message_from_bytes(raw, policy=email.policy.default)


async def interventions(daemon: Daemon) -> list[tuple[Any, ...]]:
    return await daemon.query(
        "SELECT number, subject, related_number, status FROM interventions ORDER BY number")


async def test_new_request_is_numbered_and_acknowledged(daemon: Daemon,
                                                        sink: CaptureHandler) -> None:
    """A customer's first mail opens intervention 1 and an acknowledgement with [#1] goes out."""
    raw = customer_mail(message_id="first@example.it")
    code, _ = await daemon.send(raw)
    assert code == 250
    assert await interventions(daemon) == [(1, "Caldaia guasta", None, "open")]
    [ack] = await sink.wait_for_async(1)
    assert ack.rcpt_tos == ["mario.rossi@example.it"]
    message = parse(ack.data)
    assert "[#1]" in message["Subject"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<first@example.it>"
    # An Italian mail from a new customer is answered in Italian.
    assert message["Content-Language"] == "it"


async def test_follow_ups_join_the_thread(daemon: Daemon, sink: CaptureHandler) -> None:
    """A reply to our acknowledgement, and a tagged reply from the customer, join #1."""
    await daemon.send(customer_mail())
    [ack] = await sink.wait_for_async(1)
    ack_id = parse(ack.data)["Message-ID"].strip("<>")
    code, _ = await daemon.send(customer_mail("Re: [#1] Caldaia guasta", "Ancora guasta",
                                              in_reply_to=ack_id))
    assert code == 250
    code, _ = await daemon.send(customer_mail("R: [#1] Caldaia guasta", "Foto in arrivo"))
    assert code == 250
    assert len(await interventions(daemon)) == 1
    rows = await daemon.query(
        "SELECT kind, direction FROM messages WHERE intervention_number = 1 ORDER BY id")
    assert rows == [("customer_mail", "in"), ("acknowledgement", "out"),
                    ("customer_mail", "in"), ("customer_mail", "in")]
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1, "follow-ups are not acknowledged again"


async def test_a_strangers_tag_opens_a_linked_intervention(daemon: Daemon) -> None:
    """Someone who never took part in #1 cannot write into it by putting [#1] in a subject."""
    await daemon.send(customer_mail())
    await daemon.send(customer_mail("Re: [#1] Caldaia guasta", "I am someone else",
                                    sender="intruder@example.com"))
    assert [row[:3] for row in await interventions(daemon)] == [
        (1, "Caldaia guasta", None), (2, "[#1] Caldaia guasta", 1)]


async def test_foreign_recipients_are_refused(daemon: Daemon) -> None:
    """RCPT for an address that is not ours gets 550: never an open relay."""
    code, _ = await daemon.send(customer_mail(), recipients=["victim@elsewhere.test"])
    assert code == 550
    assert await interventions(daemon) == []


async def test_plus_extension_is_accepted(daemon: Daemon) -> None:
    """support+anything@ is ours too."""
    code, _ = await daemon.send(customer_mail(), recipients=["support+x1@firm.test"])
    assert code == 250


async def test_duplicates_have_one_effect(daemon: Daemon, sink: CaptureHandler) -> None:
    """The same bytes twice, or the same mail again with other transport headers (a
    second hop, a second support address), make one intervention, one ack."""
    raw = customer_mail(message_id="dup@example.it")
    assert (await daemon.send(raw))[0] == 250
    assert (await daemon.send(raw))[0] == 250
    # Same mail, different bytes (as after a second hop adds a header).
    relayed = b"Received: from relay.example.it\r\n" + raw
    assert (await daemon.send(relayed))[0] == 250
    delivered_again = (b"Delivered-To: support+x@firm.test\r\nX-Spam-Score: 0.2\r\n"
                       + raw.replace(b"\r\n", b"\n"))
    assert (await daemon.send(delivered_again))[0] == 250
    assert len(await interventions(daemon)) == 1
    assert await daemon.query("SELECT outcome, count(*) FROM inbound GROUP BY outcome") == [
        ("new_request", 1)]
    await sink.wait_for_async(1)
    await asyncio.sleep(0.3)
    assert len(sink.messages) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"List-Id": "<news.example.it>"},
    ],
)
async def test_noise_never_answers(daemon: Daemon, sink: CaptureHandler,
                                   headers: dict[str, str]) -> None:
    """Auto-replies and bulk mail are logged, open nothing and send nothing."""
    code, _ = await daemon.send(customer_mail("Fuori ufficio", extra=headers))
    assert code == 250
    assert await interventions(daemon) == []
    assert await daemon.query("SELECT outcome FROM inbound") == [("noise",)]
    assert await daemon.query("SELECT count(*) FROM outbox") == [(0,)]


async def test_bounce_with_null_sender_never_answers(daemon: Daemon) -> None:
    """A mail with the null reverse-path (a bounce) opens nothing."""
    code, _ = await daemon.send(customer_mail("Undelivered"), sender="")
    assert code == 250
    assert await interventions(daemon) == []


async def test_storage_failure_answers_451_then_recovers(daemon: Daemon) -> None:
    """The database refusing writes (full, or read-only): 451 and nothing half-stored;
    the sender's retry is accepted."""
    raw = customer_mail(body="x" * 100_000, message_id="retry@example.it")
    async with writes_refused(daemon.running.store):
        code, _ = await daemon.send(raw)
        assert code == 451
        assert await daemon.query("SELECT count(*) FROM inbound") == [(0,)]
    code, _ = await daemon.send(raw)
    assert code == 250
    assert len(await interventions(daemon)) == 1


async def test_attachment_store_failure_answers_451(daemon: Daemon, tmp_path: Path) -> None:
    """When attachment files cannot be written, the mail is refused with 451, not lost."""
    msg = EmailMessage()
    msg["From"] = "a@example.it"
    msg["To"] = SUPPORT
    msg["Subject"] = "foto"
    msg.set_content("vedi foto")
    msg.add_attachment(b"\xff\xd8jpeg", maintype="image", subtype="jpeg", filename="f.jpg")
    blobs = daemon.settings.storage.data_dir / "blobs"
    blobs.parent.mkdir(parents=True, exist_ok=True)
    blobs.write_text("not a directory")  # a real OSError for the blob store
    code, _ = await daemon.send(msg.as_bytes())
    assert code == 451
    blobs.unlink()
    code, _ = await daemon.send(msg.as_bytes())
    assert code == 250
    rows = await daemon.query("SELECT filename, size FROM attachments")
    assert rows == [("f.jpg", 6)]


async def test_oversized_mail_gets_552(tmp_path: Path, relay: Controller) -> None:
    """Above [limits] max_message_bytes the server answers 552 (SIZE is advertised)."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             limits={"max_message_bytes": 4096})
    async with running_daemon(settings) as daemon:
        code, _ = await daemon.send(customer_mail(body="y" * 10_000))
        assert code == 552
        assert await interventions(daemon) == []


async def test_without_relay_mail_goes_to_a_maildir(tmp_path: Path) -> None:
    """With no [outbound] host the acknowledgement lands in a Maildir under the data dir."""
    settings = make_settings(tmp_path / "d")
    async with running_daemon(settings) as daemon:
        assert (await daemon.send(customer_mail()))[0] == 250
        new = settings.storage.data_dir / "outgoing" / "new"
        for _ in range(100):
            if new.exists() and any(new.iterdir()):
                break
            await asyncio.sleep(0.05)
        [path] = list(new.iterdir())
        assert "[#1]" in parse(path.read_bytes())["Subject"]


async def test_lmtp_mode_answers_per_recipient(tmp_path: Path, relay: Controller) -> None:
    """In LMTP mode every accepted recipient gets its own reply after DATA (RFC 2033)."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port, smtp={"protocol": "lmtp"})
    async with running_daemon(settings) as daemon:
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.smtp_port)

        async def say(line: bytes) -> list[bytes]:
            if line:
                writer.write(line + b"\r\n")
            replies = []
            while True:
                reply = await asyncio.wait_for(reader.readline(), 10)
                replies.append(reply)
                if reply[3:4] != b"-":
                    return replies

        await say(b"")  # greeting
        assert (await say(b"LHLO test"))[-1].startswith(b"250")
        assert (await say(b"MAIL FROM:<mario@example.it>"))[0].startswith(b"250")
        assert (await say(b"RCPT TO:<" + SUPPORT.encode() + b">"))[0].startswith(b"250")
        assert (await say(b"RCPT TO:<support+b@firm.test>"))[0].startswith(b"250")
        assert (await say(b"DATA"))[0].startswith(b"354")
        writer.write(customer_mail().replace(b"\n", b"\r\n") + b".\r\n")
        first = await asyncio.wait_for(reader.readline(), 10)
        second = await asyncio.wait_for(reader.readline(), 10)
        assert first.startswith(b"250")
        assert second.startswith(b"250")
        writer.close()
        assert len(await interventions(daemon)) == 1


async def test_acknowledgements_are_rate_limited_per_address(tmp_path: Path,
                                                             relay: Controller) -> None:
    """A robot without auto-reply headers opening case after case gets at most
    [mail] max_acks_per_hour acknowledgements: no endless ping-pong."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             mail={"max_acks_per_hour": 3})
    async with running_daemon(settings) as daemon:
        for i in range(5):
            code, _ = await daemon.send(customer_mail(f"Ticket {i}", sender="robot@example.it"))
            assert code == 250
        assert len(await interventions(daemon)) == 5, "every mail is still kept"
        assert await daemon.query("SELECT count(*) FROM outbox") == [(3,)]


async def test_our_own_mail_coming_back_is_noise(daemon: Daemon, sink: CaptureHandler) -> None:
    """An acknowledgement of ours that loops back to the support address opens nothing."""
    await daemon.send(customer_mail())
    [ack] = await sink.wait_for_async(1)
    code, _ = await daemon.send(ack.data, sender=SUPPORT)
    assert code == 250
    assert len(await interventions(daemon)) == 1
    assert (await daemon.query("SELECT outcome FROM inbound ORDER BY id"))[-1] == ("noise",)


async def test_reply_all_to_two_support_addresses_has_one_effect(daemon: Daemon) -> None:
    """One mail to support@ and, in Cc, support+x@ (one transaction) opens one case."""
    raw = customer_mail(extra={"Cc": "support+x@firm.test"})
    code, _ = await daemon.send(raw, recipients=[SUPPORT, "support+x@firm.test"])
    assert code == 250
    assert len(await interventions(daemon)) == 1


async def test_overlong_subject_is_cut_for_the_intervention(tmp_path: Path,
                                                            relay: Controller) -> None:
    """The intervention's subject keeps at most [limits] max_subject_chars characters."""
    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             limits={"max_subject_chars": 20})
    async with running_daemon(settings) as daemon:
        assert (await daemon.send(customer_mail("S" * 300)))[0] == 250
        [(subject,)] = await daemon.query("SELECT subject FROM interventions")
        assert subject == "S" * 19 + "…"


async def test_big_mails_parse_in_the_parse_process(tmp_path: Path, relay: Controller) -> None:
    """With a parse process, a mail with a 300 KB attachment is parsed there and stored
    byte for byte, while small mails keep being accepted."""
    import hashlib
    import os

    settings = make_settings(tmp_path / "d", relay_port=relay.port,
                             ingest={"parse_processes": 1})
    photo = os.urandom(300_000)
    msg = EmailMessage()
    msg["From"] = "mario.rossi@example.it"
    msg["To"] = SUPPORT
    msg["Subject"] = "Foto del guasto"
    msg.set_content("In allegato la foto.")
    msg.add_attachment(photo, maintype="image", subtype="jpeg", filename="guasto.jpg")
    async with running_daemon(settings) as daemon:
        results = await asyncio.gather(daemon.send(msg.as_bytes()),
                                       daemon.send(customer_mail("Piccola")))
        assert [code for code, _ in results] == [250, 250]
        rows = await daemon.query("SELECT filename, size, sha256 FROM attachments")
    assert rows == [("guasto.jpg", 300_000, hashlib.sha256(photo).hexdigest())]


async def test_unstorable_parsed_fields_still_keep_the_raw_mail(daemon: Daemon) -> None:
    """When neither processing nor quarantining can store what we parsed, the raw bytes
    are quarantined alone and the sender gets 250: never 451 for ever, nothing lost."""
    await daemon.running.store.write(lambda tx: reject_inbound_subjects(tx, "boom"))
    raw = customer_mail("boom: unstorable")
    code, _ = await daemon.send(raw)
    assert code == 250
    rows = await daemon.query("SELECT outcome, subject, reason FROM inbound")
    assert [(outcome, subject) for outcome, subject, _ in rows] == [("quarantined", "")]
    assert "parsed fields not storable" in rows[0][2]
    assert await daemon.query("SELECT count(*) FROM raw_messages") == [(1,)]
    assert await interventions(daemon) == []


async def test_a_reused_message_id_with_other_content_is_kept(
    daemon: Daemon, sink: CaptureHandler
) -> None:
    """A broken mailer sends a second, different mail under a Message-ID it used before:
    both are stored and visible on the same intervention, nothing is dropped, and the
    second opens no case of its own."""
    first = customer_mail(body="La caldaia non parte.", message_id="reused@example.it")
    second = customer_mail(body="Ora perde anche acqua.", message_id="reused@example.it")
    assert (await daemon.send(first))[0] == 250
    code, reply = await daemon.send(second)
    assert code == 250
    assert reply.endswith("stored as 2")  # an inbound row of its own
    assert len(await interventions(daemon)) == 1
    bodies = await daemon.query("SELECT body_text FROM messages WHERE kind = 'customer_mail'"
                                " AND intervention_number = 1 ORDER BY id")
    assert [b for (b,) in bodies] == ["La caldaia non parte.", "Ora perde anche acqua."]
    assert await daemon.query("SELECT outcome FROM inbound ORDER BY id") == [
        ("new_request",), ("follow_up",)]
    await sink.wait_for_async(1)


async def close_then_write_again(daemon: Daemon, clock: FakeClock) -> None:
    first = customer_mail(message_id="before-close@example.it")
    assert (await daemon.send(first))[0] == 250
    store = daemon.running.store
    await store.write(lambda tx: close_intervention(tx, 1, now=clock.now(), author="op"))
    clock.advance(timedelta(hours=2))
    again = customer_mail(subject="Re: Caldaia guasta", body="Si è guastata di nuovo.",
                          in_reply_to="before-close@example.it")
    assert (await daemon.send(again))[0] == 250


async def test_customer_mail_after_close_reopens_the_case(tmp_path: Path,
                                                         relay: Controller) -> None:
    """By default a customer writing to a closed case reopens it: the reopening, naming
    the sender, is on the thread just before their mail; it shows as open work again."""
    clock = FakeClock()
    async with running_daemon(make_settings(tmp_path / "data", relay_port=relay.port),
                              clock=clock) as daemon:
        await close_then_write_again(daemon, clock)
        async with daemon.running.store.read() as conn:
            detail = await queries.get_intervention(conn, 1)
        assert detail is not None
        assert (detail["status"], detail["needs_attention"]) == ("open", ["unassigned"])
        tail = [(m["kind"], m["body_text"]) for m in detail["messages"]][-2:]
        assert tail == [("status_change", "reopened by a mail from mario.rossi@example.it"),
                        ("customer_mail", "Si è guastata di nuovo.")]
        assert len(await interventions(daemon)) == 1


async def test_customer_mail_after_close_flags_the_closed_case_when_set_so(
        tmp_path: Path, relay: Controller) -> None:
    """With `[tickets] reopen_on_customer_reply = false` the case stays closed but is
    flagged `mail_after_close` in the API's view and by the list's attention filter."""
    clock = FakeClock()
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             tickets={"reopen_on_customer_reply": False})
    async with running_daemon(settings, clock=clock) as daemon:
        await close_then_write_again(daemon, clock)
        async with daemon.running.store.read() as conn:
            detail = await queries.get_intervention(conn, 1)
            flagged = await search.list_page(conn, search.ListFilter(
                attention=Attention.MAIL_AFTER_CLOSE))
        assert detail is not None
        assert (detail["status"], detail["needs_attention"]) == ("closed", ["mail_after_close"])
        assert [row["number"] for row in flagged.rows] == [1]


async def test_no_acknowledgement_without_a_from_or_anything_written(
    daemon: Daemon, sink: CaptureHandler
) -> None:
    """A mail without From: or with an empty body opens its case but is not answered;
    a spammer's link in the subject is not repeated in the acknowledgement."""
    no_from = (b"To: support@firm.test\r\nSubject: Caldaia\r\nMessage-ID: <nf@x.it>\r\n\r\n"
               b"La caldaia non parte.\r\n")
    assert (await daemon.send(no_from, sender="forged@victim.example"))[0] == 250
    empty = customer_mail(body="", message_id="empty@example.it")
    assert (await daemon.send(empty))[0] == 250
    spam = customer_mail(subject="Pillole a http://spam.example/buy oggi",
                         message_id="spam@example.it")
    assert (await daemon.send(spam))[0] == 250
    [ack] = await sink.wait_for_async(1)
    await asyncio.sleep(0.5)
    assert len(sink.messages) == 1
    assert "http" not in str(ack.message()["Subject"])
    assert "[link]" in str(ack.message()["Subject"])
    assert len(await interventions(daemon)) == 3


async def test_a_mailed_request_gets_the_type_it_names_and_its_urgency(
        daemon: Daemon, sink: CaptureHandler) -> None:
    """A mail naming a type of the firm's list opens a case of that type with its
    default priority; one saying it is urgent opens at high priority; one saying
    neither stays normal with no type, for the operator to set."""
    def add_type(tx: WriteTx) -> None:
        tx.execute("INSERT INTO request_types (code, name_en, name_it, name_ro,"
                   " default_priority) VALUES ('leak', 'Leak', 'Perdita', 'Scurgere', 'high')")

    await daemon.running.store.write(add_type)
    for subject in ("Perdita in cantina", "URGENTE caldaia ferma", "Informazioni"):
        assert (await daemon.send(customer_mail(subject=subject)))[0] == 250
    rows = await daemon.query(
        "SELECT request_type, priority FROM interventions ORDER BY number")
    assert rows == [("leak", "high"), ("", "high"), ("", "normal")]
    await sink.wait_for_async(3)


async def test_a_request_type_edited_between_mails_counts_for_the_next_one(
        daemon: Daemon) -> None:
    """The list's names are matched as they read at each mail: a type added, then
    renamed, after mails were read is what the next mail is matched against."""
    def edit(sql: str) -> Any:
        return lambda tx: tx.execute(sql)

    assert (await daemon.send(customer_mail(subject="Perdita in cantina")))[0] == 250
    await daemon.running.store.write(edit(
        "INSERT INTO request_types (code, name_en, name_it, name_ro, default_priority)"
        " VALUES ('leak', 'Leak', 'Perdita', 'Scurgere', 'high')"))
    assert (await daemon.send(customer_mail(subject="Perdita in cucina")))[0] == 250
    await daemon.running.store.write(edit(
        "UPDATE request_types SET name_it = 'Infiltrazione' WHERE code = 'leak'"))
    for subject in ("Perdita in bagno", "Infiltrazione dal tetto"):
        assert (await daemon.send(customer_mail(subject=subject)))[0] == 250
    rows = await daemon.query("SELECT request_type FROM interventions ORDER BY number")
    assert rows == [("",), ("leak",), ("",), ("leak",)]
