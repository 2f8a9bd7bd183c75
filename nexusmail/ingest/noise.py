"""Is an inbound mail noise: written by a robot, a list or a bounce, or our own come back?

Noise is stored and shown but never opens a case and never gets an answer:
answering robots is how mail loops and backscatter start (RFC 3834 §2).
Decisions are values: a short, stable reason string, or None for a mail from a person.
We only read headers and the envelope; guessing from body text ("I am out of the
office") is deliberately not done here.
"""

from __future__ import annotations

from collections.abc import Collection

from nexusmail.mail.headers import OWN_MAIL_HEADER
from nexusmail.mail.parsed import ParsedMail

OWN_MAIL = "own-mail"
X_AUTOREPLY = "x-autoreply"
X_AUTORESPOND = "x-autorespond"
X_FAILED_RECIPIENTS = "x-failed-recipients"
FEEDBACK_REPORT = "feedback-report"
LIST_ID = "list-id"
LIST_UNSUBSCRIBE = "list-unsubscribe"
NULL_RETURN_PATH = "null-return-path"
AUTO_SUBMITTED_PREFIX = "auto-submitted:"   # + the keyword, e.g. "auto-submitted:auto-replied"
PRECEDENCE_PREFIX = "precedence:"           # + bulk | junk | list | auto_reply
REPORT_PREFIX = "report:"                   # + report-type, e.g. "report:delivery-status"
SENDER_PREFIX = "sender:"                   # + mailer-daemon | postmaster

# RFC 2076 / RFC 3834 §3.1.8: Precedence is not standard but every vacation program
# and list manager sets it; "auto_reply" comes from older vacation(1) implementations.
_NOISY_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
_NULL_PATHS = frozenset({"", "<>"})


def noise_reason(
    mail: ParsedMail, *, envelope_from: str | None, own_domains: Collection[str]
) -> str | None:
    """Why `mail` is noise, or None. `envelope_from` None means unknown (e.g. IMAP)."""
    # Our own mail first: a loop must be recognised even if it also looks like a bounce.
    if _is_own_mail(mail, own_domains):
        return OWN_MAIL
    if mail.content_type == "multipart/report":
        # RFC 6522: DSNs (RFC 3464), read receipts (RFC 8098), abuse reports (RFC 5965).
        report_type = _parameter(mail.header("content-type"), "report-type")
        return REPORT_PREFIX + (report_type or "unknown")
    auto_submitted = _keyword(mail.header("auto-submitted"))
    if auto_submitted and auto_submitted != "no":
        return AUTO_SUBMITTED_PREFIX + auto_submitted
    if "x-autoreply" in mail.headers:
        return X_AUTOREPLY
    if "x-autorespond" in mail.headers:
        return X_AUTORESPOND
    if "x-failed-recipients" in mail.headers:  # Exim's bounces
        return X_FAILED_RECIPIENTS
    if "feedback-type" in mail.headers:  # ARF fields outside a multipart/report
        return FEEDBACK_REPORT
    local_part = mail.from_addr.rpartition("@")[0] if "@" in mail.from_addr else mail.from_addr
    if local_part.lower() in _ROBOT_LOCAL_PARTS:
        return SENDER_PREFIX + local_part.lower()
    if _has_null_return_path(mail, envelope_from):
        return NULL_RETURN_PATH
    # RFC 2919 / RFC 2369. X-Auto-Response-Suppress is NOT here: Outlook puts it on
    # ordinary mail written by people.
    if "list-id" in mail.headers:
        return LIST_ID
    if "list-unsubscribe" in mail.headers:
        return LIST_UNSUBSCRIBE
    precedence = _keyword(mail.header("precedence"))
    if precedence in _NOISY_PRECEDENCE:
        return PRECEDENCE_PREFIX + precedence
    return None


def is_noise(
    mail: ParsedMail, *, envelope_from: str | None, own_domains: Collection[str]
) -> bool:
    """True when `noise_reason` finds a reason."""
    return noise_reason(mail, envelope_from=envelope_from, own_domains=own_domains) is not None


def is_auto_reply(mail: ParsedMail) -> bool:
    """An RFC 3834 automatic response (out of office, vacation, autoresponder)."""
    auto_submitted = _keyword(mail.header("auto-submitted"))
    return (
        auto_submitted not in ("", "no")
        or "x-autoreply" in mail.headers
        or "x-autorespond" in mail.headers
        or _keyword(mail.header("precedence")) == "auto_reply"
    )


def _is_own_mail(mail: ParsedMail, own_domains: Collection[str]) -> bool:
    if OWN_MAIL_HEADER.lower() in mail.headers:
        return True
    message_id = (mail.message_id or "").lower()
    if not message_id.startswith("nm."):
        return False
    domain = message_id.rpartition("@")[2]
    return any(domain == own.lower() for own in own_domains)


def _has_null_return_path(mail: ParsedMail, envelope_from: str | None) -> bool:
    """RFC 5321 §4.5.5: bounces and other notifications use the null reverse-path."""
    if envelope_from is not None:
        return "".join(envelope_from.split()) in _NULL_PATHS
    # Envelope unknown (IMAP): the delivering MTA wrote it into Return-Path.
    return "".join(mail.header("return-path").split()) == "<>"


def _keyword(value: str) -> str:
    """The first token of a structured field, lower case: "Auto-Replied; x=1" -> "auto-replied"."""
    return value.split(";", 1)[0].strip().strip('"').lower()


def _parameter(value: str, name: str) -> str:
    for piece in value.split(";")[1:]:
        key, _, raw = piece.partition("=")
        if key.strip().lower() == name:
            return raw.strip().strip('"').lower()
    return ""
