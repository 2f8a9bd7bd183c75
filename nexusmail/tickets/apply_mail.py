"""Applying one inbound mail: everything it causes, in the caller's one transaction.

Steps (DESIGN, ingest 1-4): drop a duplicate (same raw bytes, or the same content once
transport headers are set aside: invariant 2); keep the raw bytes and an inbound-log row; noise is
logged and nothing else (invariant 4); otherwise the mail joins its intervention or
opens a new one, with its attachments and the outbox rows it causes (invariant 3).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.mail.addresses import is_support_recipient
from nexusmail.mail.parsed import ParsedMail
from nexusmail.mail.reply_reading import ReplyReading, read_reply
from nexusmail.mail.sender import dmarc_failed
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.assignments import ReplyFacts, find_assignment_for_reply, record_reply
from nexusmail.tickets.cases import (
    NewMessage,
    StoredAttachment,
    add_message,
    add_participants,
    add_thread_refs,
)
from nexusmail.tickets.models import Direction, MessageKind, Outcome, Source, Status
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.tags import parse_tag, strip_reply_prefixes
from nexusmail.tickets.thread_rules import Thread, ThreadFacts, decide_thread

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class InboundMail:
    raw: bytes
    raw_sha256: str
    mail: ParsedMail
    source: str                        # smtp | lmtp | imap:<account>
    envelope_from: str | None          # None when the source has no envelope (IMAP)
    envelope_to: Sequence[str]
    noise_reason: str | None
    attachments: Sequence[StoredAttachment]   # already written to the blob store
    language: str | None = None
    # Equal for every delivery of one mail (nexusmail.mail.fingerprint); None when the
    # mail could not be read (a quarantined one): then only identical bytes are copies.
    content_sha256: str | None = None
    # The body read as a technician's answer, done before the writer (see ingest.prepare);
    # None: read here (a retried or hand-made mail).
    reading: ReplyReading | None = None
    # Imported history (`nexusmail import mbox`): a case it opens is not acknowledged.
    acknowledge: bool = True
    # A retry of this quarantined inbound row (`nexusmail quarantine retry`): the row is
    # processed in place, and only while it is still quarantined (a second retry is a no-op).
    retry_of: int | None = None


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    inbound_id: int | None
    intervention_number: int | None = None
    reason: str = ""
    verdict: str | None = None         # a technician reply's, for metrics after the commit
    acted: bool | None = None          # whether that reply changed its assignment


def apply_inbound(
    tx: WriteTx,
    inbound: InboundMail,
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes] = (),
) -> IngestResult:
    mail = inbound.mail
    sender = mail.from_addr or (inbound.envelope_from or "").lower()
    if inbound.retry_of is not None:
        settled = _settled_retry(tx, inbound.retry_of)
        if settled is not None:
            return settled
    duplicate = _find_duplicate(tx, inbound, sender)
    if duplicate is not None:
        if inbound.retry_of is not None:
            return _finish(tx, inbound.retry_of, Outcome.DUPLICATE, duplicate[1],
                           f"already received as inbound {duplicate[0]}")
        return IngestResult(Outcome.DUPLICATE, duplicate[0], duplicate[1], "already received")

    tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)"
               " ON CONFLICT DO NOTHING",
               (inbound.raw_sha256, inbound.raw))
    inbound_id = _log_inbound(tx, inbound, sender, now)

    if inbound.noise_reason:
        return _finish(tx, inbound_id, Outcome.NOISE, None, inbound.noise_reason)
    if not sender:
        return _finish(tx, inbound_id, Outcome.UNMATCHED, None, "no sender address")

    message = _customer_message(inbound, inbound_id)
    # A technician's answer to an assignment mail is matched before customer threading:
    # it references the same intervention, but it is a decision, not a follow-up.
    match = find_assignment_for_reply(tx, mail, sender=sender, envelope_to=inbound.envelope_to,
                                      settings=settings, reply_keys=reply_keys)
    if match is not None:
        # body_text, not body_html: for HTML-only mail it was converted with blockquotes as
        # "> " lines, while sanitizing dropped the class markers of the quote blocks.
        reading = inbound.reading or read_reply(mail.body_text)
        facts = ReplyFacts(sender=sender, sender_doubt=_sender_doubt(mail, sender, settings),
                           mail_date=mail.date)
        effect = record_reply(tx, match, reading, message, facts=facts, now=now,
                              settings=settings)
        return replace(_finish(tx, inbound_id, Outcome.TECHNICIAN_REPLY,
                               match.intervention_number, effect.note or f"{effect.verdict}"),
                       verdict=str(effect.verdict), acted=effect.acted)

    decision = decide_thread(_thread_facts(tx, mail, sender))
    if decision.thread is Thread.FOLLOW_UP and decision.number is not None:
        number = decision.number
        closed = _status(tx, number) is Status.CLOSED
        if closed:  # kept and shown, but a closed case is not reopened by a stray "thanks"
            message = _with_extra(message, after_close=True)
        add_message(tx, number, message, now=now)
        add_participants(tx, number, _participants(mail, sender, settings))
        add_thread_refs(tx, number, list(mail.references) + list(mail.in_reply_to))
        return _finish(tx, inbound_id, Outcome.FOLLOW_UP, number, "after close" if closed else "")

    subject = _shorten(mail.subject.strip() or "(no subject)", settings.limits.max_subject_chars)
    number = open_request(
        tx,
        OpenRequest(
            customer_email=sender, customer_name=mail.from_name,
            subject=strip_reply_prefixes(subject) or subject,
            description=mail.body_text, source=Source.EMAIL,
            related_number=decision.related, first_message=message,
            language_hint=inbound.language, acknowledge=inbound.acknowledge,
        ),
        now=now, settings=settings,
    )
    add_participants(tx, number, _participants(mail, sender, settings))
    reason = f"tag of #{decision.related} from a non-participant" if decision.related else ""
    return _finish(tx, inbound_id, Outcome.NEW_REQUEST, number, reason)


def _find_duplicate(
    tx: WriteTx, inbound: InboundMail, sender: str
) -> tuple[int, int | None] | None:
    """An earlier delivery of this same mail: the same bytes, or the same content once
    transport headers are set aside. A known Message-ID with other content is another
    mail (kept), except against rows stored before fingerprints existed."""
    # `id IS DISTINCT FROM ?`: a retried row is not a duplicate of itself (NULL excludes nothing).
    retry_of = inbound.retry_of
    row = tx.execute("SELECT id, intervention_number FROM inbound WHERE raw_sha256 = ?"
                     " AND id IS DISTINCT FROM ?", (inbound.raw_sha256, retry_of)).fetchone()
    if row is None and inbound.content_sha256:
        row = tx.execute("SELECT id, intervention_number FROM inbound WHERE content_sha256 = ?"
                         " AND id IS DISTINCT FROM ?",
                         (inbound.content_sha256, retry_of)).fetchone()
    if row is None and inbound.mail.message_id:
        row = tx.execute(
            "SELECT id, intervention_number FROM inbound WHERE message_id = ? AND sender = ?"
            " AND content_sha256 IS NULL AND id IS DISTINCT FROM ?",
            (inbound.mail.message_id, sender, retry_of),
        ).fetchone()
    return None if row is None else (row[0], row[1])


def _settled_retry(tx: WriteTx, inbound_id: int) -> IngestResult | None:
    """The row's present result when it is no longer quarantined; None to process it."""
    row = tx.execute("SELECT outcome, intervention_number, reason FROM inbound WHERE id = ?",
                     (inbound_id,)).fetchone()
    if row is None:
        raise LookupError(f"inbound mail {inbound_id} does not exist")
    if row[0] == Outcome.QUARANTINED:
        return None
    return IngestResult(Outcome(row[0]), inbound_id, row[1], row[2])


def _log_inbound(tx: WriteTx, inbound: InboundMail, sender: str,
                 now: datetime) -> int:
    mail = inbound.mail
    if inbound.retry_of is not None:  # keeps its id, source and received_at
        tx.execute("UPDATE inbound SET message_id = ?, sender = ?, subject = ? WHERE id = ?",
                   (mail.message_id, sender, mail.subject[:1000], inbound.retry_of))
        return inbound.retry_of
    inbound_id: int = tx.execute(
        "INSERT INTO inbound (raw_sha256, content_sha256, size, message_id, sender,"
        " envelope_from, envelope_to, source, subject, outcome, received_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (inbound.raw_sha256, inbound.content_sha256, len(inbound.raw), mail.message_id,
         sender, inbound.envelope_from or "", json.dumps(list(inbound.envelope_to)),
         inbound.source, mail.subject[:1000], Outcome.UNMATCHED, iso(now)),
    ).fetchone()[0]
    return inbound_id


def _finish(tx: WriteTx, inbound_id: int, outcome: Outcome, number: int | None,
            reason: str) -> IngestResult:
    tx.execute("UPDATE inbound SET outcome = ?, reason = ?, intervention_number = ? WHERE id = ?",
               (outcome, reason, number, inbound_id))
    return IngestResult(outcome, inbound_id, number, reason)


def _thread_facts(tx: WriteTx, mail: ParsedMail, sender: str) -> ThreadFacts:
    referenced = _look_alike_case(tx, mail, sender)
    # The most recent reference first: In-Reply-To, then References from the end.
    for ref in list(mail.in_reply_to) + list(reversed(mail.references)):
        if referenced is not None:
            break
        row = tx.execute("SELECT intervention_number FROM thread_refs WHERE message_id = ?",
                         (ref,)).fetchone()
        if row is not None:
            referenced = int(row[0])
            break
    tag = parse_tag(mail.subject)
    tag_exists = participant = False
    if referenced is None and tag is not None:
        tag_exists = tx.execute("SELECT 1 FROM interventions WHERE number = ?",
                                (tag,)).fetchone() is not None
        participant = tx.execute(
            "SELECT 1 FROM participants WHERE email = ? AND intervention_number = ?",
            (sender, tag)).fetchone() is not None
    return ThreadFacts(referenced, tag, tag_exists, participant)


def _sender_doubt(mail: ParsedMail, sender: str, settings: Settings) -> str:
    """Why this mail's From cannot be believed enough to act on ("" when it can)."""
    if mail.sender_problem:
        return mail.sender_problem
    if dmarc_failed(mail.authentication_results, settings.security.trusted_authserv_id,
                    sender.rpartition("@")[2]):
        return "DMARC failed for the From domain (trusted Authentication-Results)"
    return ""


def _look_alike_case(tx: WriteTx, mail: ParsedMail, sender: str) -> int | None:
    """The case of an earlier mail from this sender with this same Message-ID (and, not
    being a copy, other content): the mailer reused the id for what reads as a second
    version, so it joins that case rather than opening one."""
    if not mail.message_id:
        return None
    row = tx.execute(
        "SELECT intervention_number FROM inbound WHERE message_id = ? AND sender = ?"
        " AND intervention_number IS NOT NULL ORDER BY id LIMIT 1",
        (mail.message_id, sender)).fetchone()
    return None if row is None else int(row[0])


def _customer_message(inbound: InboundMail, inbound_id: int) -> NewMessage:
    mail = inbound.mail
    return NewMessage(
        kind=MessageKind.CUSTOMER_MAIL, direction=Direction.IN,
        subject=mail.subject, body_text=mail.body_text, body_html=mail.body_html,
        author=mail.from_name, from_addr=mail.from_addr, to_addrs=mail.to_addrs,
        cc_addrs=mail.cc_addrs, message_id=mail.message_id, inbound_id=inbound_id,
        attachments=inbound.attachments,
        extra={"defects": list(mail.defects)} if mail.defects else {},
    )


def _with_extra(message: NewMessage, **extra: object) -> NewMessage:
    return replace(message, extra={**message.extra, **extra})


def _participants(mail: ParsedMail, sender: str, settings: Settings) -> list[str]:
    ours = set(settings.mail.support_addresses)
    everyone = [sender, *mail.cc_addrs, *mail.to_addrs]
    return [a for a in everyone if a and not is_support_recipient(a, ours)]


def _status(tx: WriteTx, number: int) -> Status:
    row = tx.execute("SELECT status FROM interventions WHERE number = ?", (number,)).fetchone()
    return Status(row[0])


def quarantine(
    tx: WriteTx, inbound: InboundMail, *, reason: str, now: datetime
) -> IngestResult:
    """Keep a mail we failed to process, with the reason, for a later retry (never drop)."""
    row = tx.execute("SELECT id, outcome, intervention_number, reason FROM inbound"
                     " WHERE raw_sha256 = ?", (inbound.raw_sha256,)).fetchone()
    if row is not None and row[1] != Outcome.QUARANTINED:
        # Already processed (a redelivery whose parse failed only this time, or a retry
        # that lost a race): keep that result rather than overwrite it.
        return IngestResult(Outcome.DUPLICATE, int(row[0]), row[2], "already received")
    if row is not None:
        inbound_id = int(row[0])
    else:
        tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)"
               " ON CONFLICT DO NOTHING",
                   (inbound.raw_sha256, inbound.raw))
        inbound_id = _log_inbound(tx, inbound, inbound.mail.from_addr, now)
    return _finish(tx, inbound_id, Outcome.QUARANTINED, None, reason[:2000])


def _shorten(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis showing where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
