"""Composing outbox rows into mails: templates, languages, headers, overrides."""

from __future__ import annotations

import hashlib
import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.clock import FakeClock
from nexusmail.config import MailSettings
from nexusmail.dispatch.compose import ComposeError, Composer, OutboxRow, wire_bytes
from nexusmail.mail.headers import OWN_MAIL_HEADER

SETTINGS = MailSettings(
    company_name="Termoidraulica Rossi S.r.l.",
    support_addresses=("assistenza@rossi.example", "help@rossi.example"),
)
ACK_CONTEXT = {"number": 42, "tag": "[#42]", "subject": "Caldaia in blocco",
               "customer_name": "Maria Popescu"}


def ack_row(language: str = "en", **overrides: Any) -> OutboxRow:
    fields: dict[str, Any] = {
        "id": 1, "message_id": "nm.0123abcd@rossi.example", "kind": "acknowledgement",
        "recipient": "maria@example.org", "language": language,
        "template": "acknowledgement", "context": dict(ACK_CONTEXT),
    }
    fields.update(overrides)
    return OutboxRow(**fields)


def reparse(msg: Message) -> EmailMessage:
    """What a receiver sees: the bytes on the wire, parsed again."""
    parsed = message_from_bytes(msg.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def text_of(msg: EmailMessage, subtype: str = "plain") -> str:
    part = msg.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")  # the wire form has CRLF line ends


@pytest.fixture
def composer() -> Composer:
    return Composer(SETTINGS, clock=FakeClock())


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["registered your request", "reply to this email"]),
        ("it", ["Gentile Maria Popescu", "richiesta", "rispondere a questa email", "più"]),
        ("ro", ["Bună ziua", "solicitarea dumneavoastră", "răspundeți", "aceeași"]),
    ],
)
def test_acknowledgement_renders_in_each_language(
    composer: Composer, language: str, words: list[str]
) -> None:
    """The acknowledgement renders in en/it/ro, text and HTML, with the tag in the subject."""
    composed = composer.compose(ack_row(language))
    msg = reparse(composed.message)
    assert msg["Subject"].startswith("[#42] ")
    assert "Caldaia in blocco" in msg["Subject"]
    assert msg["Subject"] == composed.subject
    assert msg.get_content_type() == "multipart/alternative"
    text = text_of(msg)
    assert text == composed.body_text
    for word in words:
        assert word in text
    assert "42" in text
    assert "[#42]" in text
    assert "[#42]" in text_of(msg, "html")
    assert msg["Content-Language"] == language
    assert composed.language == language


def test_romanian_uses_comma_below_diacritics(composer: Composer) -> None:
    """Romanian text uses ș/ț (comma below), never the cedilla forms ş/ţ."""
    composed = composer.compose(ack_row("ro"))
    assert "ț" in composed.body_text or "ș" in composed.body_text
    assert "ş" not in composed.body_text
    assert "ţ" not in composed.body_text


def test_headers_of_an_acknowledgement(composer: Composer) -> None:
    """Message-ID is the row's, marked auto-replied, own header set, From/Reply-To right."""
    row = ack_row(context={**ACK_CONTEXT, "in_reply_to": ["cust.1@example.org"],
                           "references": ["a@x.example", "cust.1@example.org"]})
    msg = reparse(composer.compose(row).message)
    assert msg["Message-ID"] == "<nm.0123abcd@rossi.example>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg[OWN_MAIL_HEADER] == "nm.0123abcd@rossi.example"
    assert msg["In-Reply-To"] == "<cust.1@example.org>"
    assert msg["References"] == "<a@x.example> <cust.1@example.org>"
    assert msg["From"].addresses[0].addr_spec == "assistenza@rossi.example"
    assert msg["From"].addresses[0].display_name == "Termoidraulica Rossi S.r.l."
    assert msg["Reply-To"] == "assistenza@rossi.example"
    assert msg["To"] == "maria@example.org"
    assert msg["Date"].datetime == FakeClock().now()


def test_reply_to_from_context_and_other_kinds_auto_generated(composer: Composer) -> None:
    """A context reply_to wins; kinds other than acknowledgement are auto-generated."""
    row = ack_row(kind="assignment",
                  context={**ACK_CONTEXT, "reply_to": "assistenza+t.abc@rossi.example"})
    msg = reparse(composer.compose(row).message)
    assert msg["Reply-To"] == "assistenza+t.abc@rossi.example"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert "In-Reply-To" not in msg


def test_subject_is_one_line(composer: Composer) -> None:
    """A customer subject with line breaks still gives a single-line Subject."""
    composed = composer.compose(ack_row(context={**ACK_CONTEXT, "subject": "Caldaia\r\n  rotta"}))
    assert composed.subject == "[#42] We received your request: Caldaia rotta"
    assert "\n" not in composed.message["Subject"]


def test_html_part_is_escaped(composer: Composer) -> None:
    """Customer text reaches the HTML part escaped, the text part verbatim."""
    composed = composer.compose(ack_row(context={**ACK_CONTEXT, "subject": "<b>x</b> & y"}))
    html = text_of(reparse(composed.message), "html")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html
    assert "<b>x</b> & y" in composed.body_text


def test_unknown_language_falls_back_to_english(composer: Composer) -> None:
    """A language without templates falls back to en (and says so in Content-Language)."""
    composed = composer.compose(ack_row("de"))
    assert composed.language == "en"
    assert composed.message["Content-Language"] == "en"
    assert "We received your request" in composed.subject


def test_override_directory_wins(tmp_path: Path) -> None:
    """A file in [mail] templates_dir replaces the packaged one; the others still load."""
    folder = tmp_path / "mail" / "it"
    folder.mkdir(parents=True)
    (folder / "acknowledgement.subject.j2").write_text("{{ tag }} Presa in carico", "utf-8")
    settings = SETTINGS.model_copy(update={"templates_dir": tmp_path})
    composed = Composer(settings).compose(ack_row("it"))
    assert composed.subject == "[#42] Presa in carico"
    assert "Gentile Maria Popescu" in composed.body_text  # packaged text part


def test_override_adds_a_language_specific_template(tmp_path: Path) -> None:
    """A template only in the override directory, text-only, composes as text/plain."""
    folder = tmp_path / "mail" / "ro"
    folder.mkdir(parents=True)
    (folder / "reminder.subject.j2").write_text("{{ tag }} Reamintire", "utf-8")
    (folder / "reminder.txt.j2").write_text("Intervenția {{ number }} e mâine.", "utf-8")
    settings = SETTINGS.model_copy(update={"templates_dir": tmp_path})
    composed = Composer(settings).compose(
        ack_row("ro", kind="reminder", template="reminder")
    )
    assert composed.message.get_content_type() == "text/plain"
    assert composed.body_text == "Intervenția 42 e mâine.\n"


def test_missing_context_key_is_loud(composer: Composer) -> None:
    """A template variable missing from the context is an error, never a blank."""
    context = {k: v for k, v in ACK_CONTEXT.items() if k != "number"}
    with pytest.raises(ComposeError, match="number"):
        composer.compose(ack_row(context=context))


def test_template_syntax_error_is_loud(tmp_path: Path) -> None:
    """A broken override template raises ComposeError naming the template."""
    folder = tmp_path / "mail" / "en"
    folder.mkdir(parents=True)
    (folder / "acknowledgement.txt.j2").write_text("{% if %}", "utf-8")
    settings = SETTINGS.model_copy(update={"templates_dir": tmp_path})
    with pytest.raises(ComposeError, match="acknowledgement"):
        Composer(settings).compose(ack_row("en"))


def test_unknown_template_is_loud(composer: Composer) -> None:
    """A template name that exists in no language raises ComposeError."""
    with pytest.raises(ComposeError, match="no template"):
        composer.compose(ack_row(template="nonexistent"))


def test_template_name_cannot_walk_paths(composer: Composer) -> None:
    """A template name with path parts is refused before any loader sees it."""
    with pytest.raises(ComposeError, match="bad template name"):
        composer.compose(ack_row(template="../../etc/passwd"))


def test_attachments_come_from_the_blob_loader() -> None:
    """Context attachments are read through the blob loader and attached with their name."""
    photo = b"\x89PNG\r\n fake image bytes"
    digest = hashlib.sha256(photo).hexdigest()
    composer = Composer(SETTINGS, blob_loader={digest: photo}.__getitem__)
    row = ack_row(context={**ACK_CONTEXT, "attachments": [
        {"sha256": digest, "filename": "caldaia.png", "content_type": "image/png"}]})
    msg = reparse(composer.compose(row).message)
    assert msg.get_content_type() == "multipart/mixed"
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "caldaia.png"
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_content() == photo
    assert "registered your request" in text_of(msg)
    assert msg["Content-Language"] == "en"


def test_attachments_without_a_loader_are_an_error(composer: Composer) -> None:
    """A row with attachments but no blob loader fails loudly instead of dropping them."""
    row = ack_row(context={**ACK_CONTEXT, "attachments": [
        {"sha256": "0" * 64, "filename": "a.pdf", "content_type": "application/pdf"}]})
    with pytest.raises(ComposeError, match="blob loader"):
        composer.compose(row)


@settings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=300)
       .filter(lambda s: s.strip() != ""))
def test_any_subject_survives_the_wire(subject: str) -> None:
    """Any customer subject (accents, emoji, CJK) comes back identical after our own
    wire encoding, with encoded words under 76 characters and lines under 998."""
    composer = Composer(SETTINGS, clock=FakeClock())
    composed = composer.compose(ack_row(context={**ACK_CONTEXT, "subject": subject}))
    raw = wire_bytes(composed.message)
    assert max(len(line) for line in raw.split(b"\r\n")) < 998
    words = re.findall(rb"=\?utf-8\?b\?[^?]*\?=", raw)
    assert all(len(word) <= 75 for word in words)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == composed.subject


@settings(max_examples=300)
@given(text=st.text(max_size=300), subtype=st.sampled_from(["plain", "html"]))
def test_text_parts_are_mimetext_byte_for_byte(text: str, subtype: str) -> None:
    """Our cheap text part flattens exactly as email.mime's MIMEText would."""
    from email.mime.text import MIMEText

    from nexusmail.dispatch.compose import _UTF8_QP, _qp_text

    stock = MIMEText(text, subtype, _UTF8_QP)  # type: ignore[arg-type]
    ours = _qp_text(text, subtype)
    assert wire_bytes(ours) == wire_bytes(stock)
    assert ours.get_payload(decode=True) == stock.get_payload(decode=True)


def generator_bytes(msg: Message, linesep: str) -> bytes:
    """What email.generator writes for `msg` under our wire policy."""
    import io
    from email.generator import BytesGenerator

    from nexusmail.dispatch.compose import WIRE_POLICY

    out = io.BytesIO()
    BytesGenerator(out, policy=WIRE_POLICY.clone(linesep=linesep)).flatten(msg)
    return out.getvalue()


@pytest.mark.parametrize("language", ["en", "it", "ro"])
@pytest.mark.parametrize("extras", ["none", "attachment and invitation"])
def test_wire_bytes_are_the_generators(language: str, extras: str) -> None:
    """Our own flattening writes exactly what email.generator writes, for SMTP (CRLF)
    and for the Maildir (LF): an acknowledgement alone, and one with a file attached
    and a calendar invitation (nested multiparts, base64 parts)."""
    photo = b"\x89PNG\r\n fake image bytes" * 40
    digest = hashlib.sha256(photo).hexdigest()
    composer = Composer(SETTINGS, clock=FakeClock(),
                        blob_loader={digest: photo}.__getitem__)
    context: dict[str, Any] = dict(ACK_CONTEXT)
    if extras != "none":
        context["attachments"] = [{"sha256": digest, "filename": "caldaia è.png",
                                   "content_type": "image/png"}]
        context["calendar"] = {"method": "REQUEST", "first_day": "2026-03-04",
                               "last_day": "2026-03-05", "uid": "nm-42@rossi.example",
                               "sequence": 0, "summary": "Intervento #42",
                               "location": "Via Roma 1",
                               "organizer": "assistenza@rossi.example",
                               "attendee": "luca@rossi.example"}
    msg = composer.compose(ack_row(language, context=context)).message
    from nexusmail.dispatch.compose import _flatten_plain

    assert _flatten_plain(msg, "\r\n", [])  # the quick path, not the generator's
    for linesep in ("\r\n", "\n"):
        assert wire_bytes(msg, linesep=linesep) == generator_bytes(msg, linesep)


@settings(max_examples=200)
@given(text=st.text(st.sampled_from("From \r\nab.=è\t"), max_size=200),
       header=st.text(max_size=30))
def test_wire_bytes_are_the_generators_for_any_text(text: str, header: str) -> None:
    """Any text (lines starting with "From ", lone CR or LF, trailing spaces) and any
    header value (non-ASCII or multi-line ones take the generator's own path) give the
    generator's bytes, in a text-only mail and in a multipart."""
    from email.mime.multipart import MIMEMultipart

    from nexusmail.dispatch.compose import _UTF8_QP, _qp_text

    plain = _qp_text(text, "plain")
    plain["X-Note"] = header
    both = MIMEMultipart("alternative", "=_nm_alt_test",
                         _subparts=[_qp_text(text, "plain"), _qp_text(text, "html")])
    both["Subject"] = header
    raw_text = Message()
    raw_text.set_payload(text, _UTF8_QP)  # type: ignore[arg-type]
    for msg in (plain, both, raw_text):
        for linesep in ("\r\n", "\n"):
            assert wire_bytes(msg, linesep=linesep) == generator_bytes(msg, linesep)
