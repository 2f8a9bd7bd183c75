"""Applying one inbound mail: everything it causes, in the caller's one transaction.

Three steps: gather the facts about the mail from the store, let the pure rules of
tickets.triage rule on them, and carry the ruling out. A copy of a mail already
received (same raw bytes, or the same content once transport headers are set aside)
has no second effect; anything else keeps its raw bytes and an inbound-log row. Noise
is logged and nothing else, so it never answers; a technician's answer is recorded on
its assignment; other mail joins its intervention or opens a new one (unless the loop
guard, tickets.peer_guard, holds it), with its attachments and the outgoing mails it
causes as outbox rows of the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.mail.addresses import base_address, is_support_recipient
from nexusmail.mail.html import SANITIZER_VERSION
from nexusmail.mail.parsed import ParsedMail
from nexusmail.mail.peers import peer_of
from nexusmail.mail.reply_reading import ReplyReading, read_reply
from nexusmail.mail.sender import dmarc_failed
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.assignments import (
    AssignmentMatch,
    answer_facts,
    find_assignment_for_reply,
    hold_for_answer,
    record_reply,
)
from nexusmail.tickets.case_edits import request_type_defaults
from nexusmail.tickets.cases import (
    NewMessage,
    StoredAttachment,
    add_participants,
    add_thread_refs,
    append_message,
    reopen_if_not_open,
)
from nexusmail.tickets.message_extra import MessageExtra
from nexusmail.tickets.models import Direction, MessageKind, Outcome, Source, Status
from nexusmail.tickets.new_requests import OpenRequest, open_case
from nexusmail.tickets.peer_guard import hold_new_case, record_new_case
from nexusmail.tickets.request_guess import (
    RequestText,
    ask_type_list,
    guess_from,
    priority_for,
    request_text,
)
from nexusmail.tickets.sender_match import ask_match_sender
from nexusmail.tickets.serials import serial_candidates
from nexusmail.tickets.tags import parse_tag, strip_reply_prefixes
from nexusmail.tickets.thread_rules import ThreadFacts
from nexusmail.tickets.triage import Disposition, MailFacts, Ruling, triage

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
    # Subject and body tokens that may be serials (tickets.serials), found before the
    # writer; None: found here (a retried or hand-made mail).
    serial_candidates: tuple[str, ...] | None = None
    # The subject and body's start as guessing the request type reads them, worked out
    # before the writer (tickets.request_guess); None: here.
    request_text: RequestText | None = None
    # The raw bytes are already in the blob store (an S3 store): the row only names them.
    raw_in_blobs: bool = False


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    inbound_id: int | None
    intervention_number: int | None = None
    reason: str = ""
    verdict: str | None = None         # a technician reply's, for metrics after the commit
    acted: bool | None = None          # whether that reply changed its assignment
    held: bool = False                 # kept back by the loop guard (sender muted)
    ack_skipped: str | None = None     # why the new case's acknowledgement did not go out


@dataclass(frozen=True)
class _Answer:
    """A mail naming an assignment: what recording it needs beyond the ruling."""

    match: AssignmentMatch
    reading: ReplyReading
    written_at: datetime


def apply_inbound(
    tx: WriteTx,
    inbound: InboundMail,
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes] = (),
) -> IngestResult:
    sender = inbound.mail.from_addr or (inbound.envelope_from or "").lower()
    # Held to the commit: two daemons given two deliveries of one mail at once (or two
    # retries of one quarantined mail) must not both find it new.
    xact_lock.hold(tx, "inbound", inbound.content_sha256 or inbound.raw_sha256)
    if inbound.retry_of is not None:
        settled = _settled_retry(tx, inbound.retry_of)
        if settled is not None:
            return settled
    facts, answer = _gather_facts(tx, inbound, sender, now=now, settings=settings,
                                  reply_keys=reply_keys)
    return _carry_out(tx, inbound, facts, triage(facts), answer, sender=sender, now=now,
                      settings=settings)


def _gather_facts(
    tx: WriteTx,
    inbound: InboundMail,
    sender: str,
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes],
) -> tuple[MailFacts, _Answer | None]:
    """The facts `triage` rules on, looked up in this transaction; none that an earlier
    one makes moot (a copy, noise or a senderless mail is matched to no case)."""
    mail = inbound.mail
    earlier = _earlier_deliveries(tx, inbound, sender)
    if earlier.copy is not None:
        return MailFacts(copy_of=earlier.copy[0], copy_number=earlier.copy[1]), None
    if inbound.noise_reason or not sender:
        return MailFacts(noise_reason=inbound.noise_reason, has_sender=bool(sender)), None
    match = find_assignment_for_reply(tx, mail, sender=sender, envelope_to=inbound.envelope_to,
                                      settings=settings, reply_keys=reply_keys)
    if match is not None:
        match = hold_for_answer(tx, match)
        # body_text, not body_html: for HTML-only mail it was converted with blockquotes as
        # "> " lines, while sanitizing dropped the class markers of the quote blocks.
        reading = inbound.reading or read_reply(mail.body_text)
        # Bounded by arrival: a Date in the future cannot make a reply outrank later ones.
        written_at = min(mail.date or now, now)
        answer = answer_facts(tx, match, reading, sender=sender,
                              sender_doubt=_sender_doubt(mail, sender, settings),
                              written_at=written_at)
        return MailFacts(answer=answer), _Answer(match, reading, written_at)
    thread, closed = _thread_facts(tx, mail, sender, earlier.look_alike)
    return MailFacts(thread=thread, closed_cases=closed), None


def _carry_out(
    tx: WriteTx,
    inbound: InboundMail,
    facts: MailFacts,
    ruling: Ruling,
    answer: _Answer | None,
    *,
    sender: str,
    now: datetime,
    settings: Settings,
) -> IngestResult:
    """Everything the ruling causes, in the caller's transaction."""
    mail = inbound.mail
    if ruling.disposition is Disposition.COPY:
        assert facts.copy_of is not None
        if inbound.retry_of is not None:
            return _finish(tx, inbound.retry_of, Outcome.DUPLICATE, ruling.number,
                           f"already received as inbound {facts.copy_of}")
        return IngestResult(Outcome.DUPLICATE, facts.copy_of, ruling.number, "already received")

    # A new case's guess reads the list of request types, and its opening who the
    # sender is: asked now, their answers come back with the unit's next read on
    # PostgreSQL (the loop guard's, or the inbound row's id), not in round trips of
    # their own.
    type_list = customer = None
    if ruling.disposition is Disposition.NEW_CASE:
        type_list = ask_type_list(tx)
        customer = ask_match_sender(tx, email=sender, name=mail.from_name, now=now,
                                    settings=settings)
    logged = _outcome_before_effects(tx, inbound, ruling, sender, now=now, settings=settings)
    tx.execute("INSERT INTO raw_messages (sha256, data, in_blobs) VALUES (?, ?, ?)"
               " ON CONFLICT DO NOTHING",
               (inbound.raw_sha256, b"" if inbound.raw_in_blobs else inbound.raw,
                int(inbound.raw_in_blobs)))
    inbound_id = _log_inbound(tx, inbound, sender, now, logged)
    if ruling.disposition in (Disposition.NOISE, Disposition.NO_SENDER) or logged.held:
        return IngestResult(logged.outcome, inbound_id, None, logged.reason, held=logged.held)

    message = _customer_message(inbound, inbound_id)
    if ruling.disposition in (Disposition.DECISION, Disposition.KEPT_ANSWER):
        assert answer is not None
        effect = record_reply(tx, answer.match, answer.reading, message, ruling, sender=sender,
                              written_at=answer.written_at, now=now, settings=settings)
        return replace(_finish(tx, inbound_id, Outcome.TECHNICIAN_REPLY,
                               answer.match.intervention_number,
                               effect.note or f"{effect.verdict}"),
                       verdict=str(effect.verdict), acted=effect.acted)

    if ruling.disposition is Disposition.FOLLOW_UP:
        assert ruling.number is not None
        number = ruling.number
        if ruling.after_close and settings.tickets.reopen_on_customer_reply:
            # The customer writes again about a finished job: it is not finished for
            # them. The reopening is written on the thread before their mail.
            reopen_if_not_open(tx, number, now=now, author=f"mail:{sender}",
                               note=f"reopened by a mail from {sender}")
        elif ruling.after_close:
            message = _with_extra(message, {"after_close": True})
        append_message(tx, number, message, now=now)
        add_participants(tx, number, _participants(mail, sender, settings))
        add_thread_refs(tx, number, list(mail.references) + list(mail.in_reply_to))
        return IngestResult(Outcome.FOLLOW_UP, inbound_id, number, ruling.reason)

    subject = _shorten(mail.subject.strip() or "(no subject)", settings.limits.max_subject_chars)
    # What the customer says it is: a type of the firm's list, and urgency.
    assert type_list is not None  # both asked above for a new case
    assert customer is not None
    types = type_list()
    guess = guess_from(inbound.request_text or request_text(mail.subject, mail.body_text),
                       types.phrases)
    priority = priority_for(guess, request_type_defaults(tx, guess.request_type)[0])
    opened = open_case(
        tx,
        OpenRequest(
            customer_email=sender, customer_name=mail.from_name,
            subject=strip_reply_prefixes(subject) or subject,
            description=mail.body_text, source=Source.EMAIL,
            request_type=guess.request_type, priority=priority,
            related_number=ruling.related, first_message=message,
            language_hint=inbound.language,
            acknowledge=inbound.acknowledge and _worth_acknowledging(mail),
            start_sequences=inbound.acknowledge,
            serial_candidates=(serial_candidates(mail.subject, mail.body_text)
                               if inbound.serial_candidates is None
                               else inbound.serial_candidates),
            participants=tuple(_participants(mail, sender, settings)),
            type_list=types,
        ),
        now=now, settings=settings, sender=customer,
    )
    tx.execute("UPDATE inbound SET intervention_number = ? WHERE id = ?",
               (opened.number, inbound_id))
    return IngestResult(Outcome.NEW_REQUEST, inbound_id, opened.number, ruling.reason,
                        ack_skipped=opened.ack_skipped)


@dataclass(frozen=True)
class _Logged:
    """What the inbound row says of the mail's outcome when it is written."""

    outcome: Outcome
    reason: str
    number: int | None = None
    held: bool = False


def _outcome_before_effects(tx: WriteTx, inbound: InboundMail, ruling: Ruling, sender: str,
                            *, now: datetime, settings: Settings) -> _Logged:
    """The mail's outcome as far as it is known before its effects, so that its inbound
    row is written once with it (a second statement to fill the row in was work for the
    store's one writer at every mail): all of it but a new case's number and a
    technician answer's result (which `_finish` writes). The loop guard rules here on
    a mail that would open a case, so a held mail's row says so from the start."""
    if ruling.disposition is Disposition.NOISE:
        return _Logged(Outcome.NOISE, ruling.reason)
    if ruling.disposition is Disposition.NO_SENDER:
        return _Logged(Outcome.UNMATCHED, ruling.reason)
    if ruling.disposition is Disposition.FOLLOW_UP:
        return _Logged(Outcome.FOLLOW_UP, ruling.reason, ruling.number)
    if ruling.disposition is not Disposition.NEW_CASE:
        return _Logged(Outcome.UNMATCHED, "")
    # Imported history is not live traffic: it neither trips nor feeds the loop guard.
    if inbound.acknowledge:
        peer = peer_of(sender, settings.mail.support_addresses)
        hold = hold_new_case(tx, peer, now=now, settings=settings)
        if hold is not None:
            return _Logged(Outcome.HELD, hold.reason, held=True)
        record_new_case(tx, peer, now=now, settings=settings)
    return _Logged(Outcome.NEW_REQUEST, ruling.reason)


def _worth_acknowledging(mail: ParsedMail) -> bool:
    """A mail without a From: (only an envelope sender, often forged) or with nothing
    in it opens its case all the same, but gets no acknowledgement: answering those is
    how a help desk becomes a source of backscatter."""
    return bool(mail.from_addr) and bool(mail.body_text.strip() or mail.attachments)


# The rank of the look-alike row among what `_earlier_deliveries` finds (below: copies).
LOOK_ALIKE_RANK = 3


@dataclass(frozen=True)
class _Earlier:
    """What the inbound log holds of this mail's earlier deliveries."""

    # An earlier delivery of this same mail: (its inbound row, that row's intervention).
    copy: tuple[int, int | None] | None
    # Not a copy, but an earlier mail from this sender with this same Message-ID: the
    # mailer reused the id for what reads as a second version, so it joins that case
    # rather than opening one.
    look_alike: int | None


def _earlier_deliveries(tx: WriteTx, inbound: InboundMail, sender: str) -> _Earlier:
    """A copy is an earlier delivery of this same mail: the same bytes, or the same
    content once transport headers are set aside. A known Message-ID with other content
    is another mail (kept), except against rows stored before fingerprints existed; its
    case is the look-alike's."""
    # `id IS DISTINCT FROM ?`: a retried row is not a duplicate of itself (NULL excludes nothing).
    # One statement, each way of matching on its own index and the best way first (the
    # look-alike last, read only when no copy is found): on PostgreSQL every statement
    # read is a round trip the one writer waits for.
    retry_of = inbound.retry_of
    message_id = inbound.mail.message_id or None
    row = tx.execute(
        "SELECT id, intervention_number, rank FROM ("
        " SELECT id, intervention_number, 0 AS rank FROM inbound"
        "  WHERE raw_sha256 = ? AND id IS DISTINCT FROM ?"
        " UNION ALL SELECT id, intervention_number, 1 FROM inbound"
        "  WHERE content_sha256 = ? AND id IS DISTINCT FROM ?"
        " UNION ALL SELECT id, intervention_number, 2 FROM inbound"
        "  WHERE message_id = ? AND sender = ? AND content_sha256 IS NULL"
        "  AND id IS DISTINCT FROM ?"
        " UNION ALL SELECT * FROM (SELECT id, intervention_number, 3 FROM inbound"
        "  WHERE message_id = ? AND sender = ? AND intervention_number IS NOT NULL"
        "  ORDER BY id LIMIT 1) AS look_alike"
        ") AS found ORDER BY rank LIMIT 1",
        (inbound.raw_sha256, retry_of, inbound.content_sha256 or None, retry_of,
         message_id, sender, retry_of, message_id, sender),
    ).fetchone()
    if row is None:
        return _Earlier(None, None)
    if row[2] == LOOK_ALIKE_RANK:
        return _Earlier(None, int(row[1]))
    return _Earlier((row[0], row[1]), None)


def _settled_retry(tx: WriteTx, inbound_id: int) -> IngestResult | None:
    """The row's present result when it is no longer quarantined or held; None to
    process it."""
    row = tx.execute("SELECT outcome, intervention_number, reason FROM inbound WHERE id = ?",
                     (inbound_id,)).fetchone()
    if row is None:
        raise LookupError(f"inbound mail {inbound_id} does not exist")
    if row[0] in (Outcome.QUARANTINED, Outcome.HELD):
        return None
    return IngestResult(Outcome(row[0]), inbound_id, row[1], row[2])


def _log_inbound(tx: WriteTx, inbound: InboundMail, sender: str,
                 now: datetime, logged: _Logged) -> int:
    mail = inbound.mail
    if inbound.retry_of is not None:  # keeps its id, source and received_at
        tx.execute("UPDATE inbound SET message_id = ?, sender = ?, subject = ?, outcome = ?,"
                   " reason = ?, intervention_number = ? WHERE id = ?",
                   (mail.message_id, sender, mail.subject[:1000], logged.outcome,
                    logged.reason, logged.number, inbound.retry_of))
        return inbound.retry_of
    inbound_id: int = tx.execute(
        "INSERT INTO inbound (raw_sha256, content_sha256, size, message_id, sender,"
        " envelope_from, envelope_to, source, subject, outcome, reason, intervention_number,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (inbound.raw_sha256, inbound.content_sha256, len(inbound.raw), mail.message_id,
         sender, inbound.envelope_from or "", json.dumps(list(inbound.envelope_to)),
         inbound.source, mail.subject[:1000], logged.outcome, logged.reason, logged.number,
         iso(now)),
    ).fetchone()[0]
    return inbound_id


def _finish(tx: WriteTx, inbound_id: int, outcome: Outcome, number: int | None,
            reason: str) -> IngestResult:
    tx.execute("UPDATE inbound SET outcome = ?, reason = ?, intervention_number = ? WHERE id = ?",
               (outcome, reason, number, inbound_id))
    return IngestResult(outcome, inbound_id, number, reason)


def _thread_facts(tx: WriteTx, mail: ParsedMail, sender: str, look_alike: int | None
                  ) -> tuple[ThreadFacts, frozenset[int]]:
    """What threading reads, and which of the cases it names are closed; the case of
    a look-alike earlier mail (`_Earlier`) comes first."""
    tag = parse_tag(mail.subject)
    if look_alike is not None:
        closed = _status(tx, look_alike) is Status.CLOSED
        return ThreadFacts(look_alike, tag, False, False), frozenset({look_alike} if closed
                                                                     else ())
    # The most recent reference first: In-Reply-To, then References from the end.
    referenced = _first_thread_ref(tx, [*mail.in_reply_to, *reversed(mail.references)])
    if referenced is not None:
        number, status = referenced
        return ThreadFacts(number, tag, False, False), frozenset(
            {number} if status is Status.CLOSED else ())
    if tag is None:
        return ThreadFacts(None, None, False, False), frozenset()
    # The tagged case and whether the sender took part in it, in one statement. A
    # customer's plus-address (rossi+ufficio@ for rossi@) is theirs: it only adds a
    # message to the thread, where a technician's answer needs the exact address.
    row = tx.execute("SELECT status, EXISTS (SELECT 1 FROM participants"
                     " WHERE email IN (?, ?) AND intervention_number = interventions.number)"
                     " FROM interventions WHERE number = ?",
                     (sender.lower(), base_address(sender), tag)).fetchone()
    participant = row is not None and bool(row[1])
    closed = row is not None and Status(row[0]) is Status.CLOSED
    return ThreadFacts(None, tag, row is not None, participant), frozenset({tag} if closed
                                                                          else ())


# References looked up in one statement (a long References header takes several).
REFS_PER_READ = 50


def _first_thread_ref(tx: WriteTx, refs: Sequence[str]) -> tuple[int, Status] | None:
    """The case (and its status) of the first of `refs` that one of its messages has,
    the references looked up together rather than one statement each."""
    for start in range(0, len(refs), REFS_PER_READ):
        chunk = refs[start:start + REFS_PER_READ]
        marks = ", ".join("?" for _ in chunk)
        rows = tx.execute(
            "SELECT t.message_id, t.intervention_number, i.status FROM thread_refs t"  # noqa: S608
            f" LEFT JOIN interventions i ON i.number = t.intervention_number"
            f" WHERE t.message_id IN ({marks})", chunk).fetchall()
        if rows:
            order: dict[str, int] = {}
            for n, ref in enumerate(chunk):
                order.setdefault(ref, n)
            first = min(rows, key=lambda r: order[r[0]])
            return int(first[1]), Status(first[2])
    return None


def _sender_doubt(mail: ParsedMail, sender: str, settings: Settings) -> str:
    """Why this mail's From cannot be believed enough to act on ("" when it can)."""
    if mail.sender_problem:
        return mail.sender_problem
    if dmarc_failed(mail.authentication_results, settings.security.trusted_authserv_id,
                    sender.rpartition("@")[2]):
        return "DMARC failed for the From domain (trusted Authentication-Results)"
    return ""


def _customer_message(inbound: InboundMail, inbound_id: int) -> NewMessage:
    mail = inbound.mail
    return NewMessage(
        kind=MessageKind.CUSTOMER_MAIL, direction=Direction.IN,
        subject=mail.subject, body_text=mail.body_text, body_html=mail.body_html,
        html_sanitizer=SANITIZER_VERSION if mail.body_html is not None else None,
        author=mail.from_name, from_addr=mail.from_addr, to_addrs=mail.to_addrs,
        cc_addrs=mail.cc_addrs, message_id=mail.message_id, inbound_id=inbound_id,
        attachments=inbound.attachments,
        extra={"defects": list(mail.defects)} if mail.defects else {},
    )


def _with_extra(message: NewMessage, extra: MessageExtra) -> NewMessage:
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
    xact_lock.hold(tx, "inbound", inbound.content_sha256 or inbound.raw_sha256)
    row = tx.execute("SELECT id, outcome, intervention_number, reason FROM inbound"
                     " WHERE raw_sha256 = ?", (inbound.raw_sha256,)).fetchone()
    if row is not None and row[1] not in (Outcome.QUARANTINED, Outcome.HELD):
        # Already processed (a redelivery whose parse failed only this time, or a retry
        # that lost a race): keep that result rather than overwrite it.
        return IngestResult(Outcome.DUPLICATE, int(row[0]), row[2], "already received")
    if row is not None:
        inbound_id = int(row[0])
    else:
        # Kept in the database even beside a blob store: a quarantined mail must be
        # retried from its bytes whatever became of the store.
        tx.execute("INSERT INTO raw_messages (sha256, data) VALUES (?, ?)"
                   " ON CONFLICT DO NOTHING",
                   (inbound.raw_sha256, inbound.raw))
        inbound_id = _log_inbound(tx, inbound, inbound.mail.from_addr, now,
                                  _Logged(Outcome.QUARANTINED, reason[:2000]))
        return IngestResult(Outcome.QUARANTINED, inbound_id, None, reason[:2000])
    return _finish(tx, inbound_id, Outcome.QUARANTINED, None, reason[:2000])


def _shorten(text: str, limit: int) -> str:
    """At most `limit` characters, an ellipsis showing where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
