"""Noise (RFC 3834 auto-replies, bounces, lists, our own mail): stable reasons from headers."""

from __future__ import annotations

import pytest

from nexusmail.ingest.noise import is_auto_reply, is_noise, noise_reason
from nexusmail.mail.parsed import ParsedMail

OWN = ("termoservice.it",)


def _mail(
    headers: dict[str, str] | None = None,
    *,
    from_addr: str = "mario.rossi@gmail.com",
    message_id: str | None = "abc@gmail.com",
    content_type: str = "text/plain",
) -> ParsedMail:
    return ParsedMail(
        message_id=message_id, in_reply_to=(), references=(), subject="Caldaia",
        from_addr=from_addr, from_name="", to_addrs=("assistenza@termoservice.it",),
        cc_addrs=(), reply_to=(), date=None, body_text="rotta", body_html=None,
        attachments=(), headers=headers or {}, content_type=content_type,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mail", "envelope_from", "reason"),
    [
        (_mail(), "mario.rossi@gmail.com", None),
        (_mail(), None, None),
        (_mail({"auto-submitted": "no"}), None, None),
        (_mail({"auto-submitted": "auto-replied"}), None, "auto-submitted:auto-replied"),
        (_mail({"auto-submitted": "Auto-Generated; owner-email=x"}), None,
         "auto-submitted:auto-generated"),
        (_mail({"auto-submitted": "auto-notified"}), None, "auto-submitted:auto-notified"),
        (_mail({"x-autoreply": "yes"}), None, "x-autoreply"),
        (_mail({"x-autorespond": "Out of office"}), None, "x-autorespond"),
        (_mail({"precedence": "bulk"}), None, "precedence:bulk"),
        (_mail({"precedence": "Junk"}), None, "precedence:junk"),
        (_mail({"precedence": "list"}), None, "precedence:list"),
        (_mail({"precedence": "first-class"}), None, None),
        (_mail({"list-id": "<news.example.it>", "precedence": "list"}), None, "list-id"),
        (_mail({"list-unsubscribe": "<mailto:u@x.it>"}), None, "list-unsubscribe"),
        (_mail({"content-type": "multipart/report; report-type=delivery-status; boundary=x"},
               content_type="multipart/report"), None, "report:delivery-status"),
        (_mail({"content-type": 'multipart/report; report-type="disposition-notification"'},
               content_type="multipart/report"), None, "report:disposition-notification"),
        (_mail({"x-failed-recipients": "a@b.it"}), None, "x-failed-recipients"),
        (_mail({"feedback-type": "abuse"}), None, "feedback-report"),
        (_mail(from_addr="mailer-daemon@mx.example.it"), None, "sender:mailer-daemon"),
        (_mail(from_addr="MAILER-DAEMON@mx.example.it"), None, "sender:mailer-daemon"),
        (_mail(from_addr="postmaster@example.ro"), None, "sender:postmaster"),
        (_mail(), "", "null-return-path"),
        (_mail(), "<>", "null-return-path"),
        (_mail({"return-path": "<>"}), None, "null-return-path"),
        (_mail({"return-path": "< >"}), None, "null-return-path"),
        # the envelope, when known, wins over a Return-Path header the sender wrote
        (_mail({"return-path": "<>"}), "mario.rossi@gmail.com", None),
        (_mail({"return-path": "<bounce@x.it>"}), None, None),
        (_mail({"x-nexusmail-outbox": "41"}), None, "own-mail"),
        (_mail(message_id="nm.12.ack@termoservice.it"), None, "own-mail"),
        (_mail(message_id="nm.12.ack@TermoService.IT"), None, "own-mail"),
        (_mail(message_id="nm.12.ack@other.it"), None, None),
        (_mail(message_id="x.12@termoservice.it"), None, None),
        # Outlook sets this on mail people write: never noise on its own
        (_mail({"x-auto-response-suppress": "All"}), None, None),
        # our own bounce coming back is our own mail first
        (_mail({"x-nexusmail-outbox": "1", "auto-submitted": "auto-replied"}), None, "own-mail"),
    ],
)
def test_noise_reason(mail: ParsedMail, envelope_from: str | None, reason: str | None) -> None:
    """Each noise signal gives its stable reason; a person's mail gives None."""
    assert noise_reason(mail, envelope_from=envelope_from, own_domains=OWN) == reason
    assert is_noise(mail, envelope_from=envelope_from, own_domains=OWN) == (reason is not None)


@pytest.mark.parametrize(
    ("mail", "expected"),
    [
        (_mail(), False),
        (_mail({"auto-submitted": "no"}), False),
        (_mail({"auto-submitted": "auto-replied"}), True),
        (_mail({"x-autoreply": "yes"}), True),
        (_mail({"x-autorespond": "x"}), True),
        (_mail({"precedence": "auto_reply"}), True),
        (_mail({"precedence": "bulk"}), False),
        (_mail({"list-id": "x"}), False),
    ],
)
def test_is_auto_reply(mail: ParsedMail, expected: bool) -> None:
    """Only RFC 3834 automatic responses count as auto-replies (not lists or bulk)."""
    assert is_auto_reply(mail) is expected
