"""Assignments: putting employees on an intervention and acting on their replies.

An assignment mail carries a signed Reply-To (tickets.reply_tokens). A reply is
matched by that token, by In-Reply-To/References to the assignment mail, or by the
subject tag from an employee assigned there; whether it then ACTS on the assignment is
ruled in tickets.triage (only a provable answer from that assignment's employee, on an
open intervention, that is no replay). Every reply, acted on or not, is kept on the
thread with its verdict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.mail.addresses import is_support_recipient, normalize, plus_extension
from nexusmail.mail.parsed import ParsedMail
from nexusmail.mail.reply_reading import REPORTS, ReplyReading, Verdict
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import INTEGRITY_ERRORS, DbRow, WriteTx
from nexusmail.tickets.assignment_calendar import CANCEL, visit_window
from nexusmail.tickets.assignment_road import road_context
from nexusmail.tickets.cases import Conflict, NewMessage, NotFound, add_message, intervention_status
from nexusmail.tickets.message_extra import MessageExtra, dump_extra, load_extra
from nexusmail.tickets.models import (
    AssignmentStatus,
    Direction,
    MatchedBy,
    MessageKind,
    OutboxKind,
    Status,
)
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.reply_claims import may_name_assignment
from nexusmail.tickets.reply_tokens import make_token, parse_token, reply_address, verify_token
from nexusmail.tickets.reports import apply_report
from nexusmail.tickets.sequence_plan import step_finished
from nexusmail.tickets.sla_plan import plan_new_assignment
from nexusmail.tickets.tags import format_tag, parse_tag
from nexusmail.tickets.teams import (
    after_rejection,
    claim_job,
    in_team,
    open_dispatch,
    taken_by_colleague,
)
from nexusmail.tickets.triage import AnswerFacts, Disposition, Ruling

log = structlog.get_logger(__name__)

# The customer's files travel on the assignment mail up to this total; bigger ones are
# only listed (many receiving servers refuse mails over 10-25 MB).
MAX_ATTACHED_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class AssignmentMatch:
    assignment_id: int
    intervention_number: int
    employee_email: str
    employee_name: str
    employee_language: str
    status: AssignmentStatus
    matched_by: MatchedBy


def assign(
    tx: WriteTx,
    number: int,
    employee_email: str,
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes],
    assigned_by: str = "",
    note: str = "",
    team_dispatch_id: int | None = None,
    step: dict[str, Any] | None = None,
) -> int:
    """Put an employee on an open intervention and queue their assignment mail, with
    `note` (instructions for the technician) on it; `team_dispatch_id` when it is one
    member's share of a team assignment (tickets.teams); `step` when it is a step of an
    action sequence (tickets.sequence_steps: its action, expected hours and notes)."""
    if intervention_status(tx, number) is Status.CLOSED:
        raise Conflict(msg("intervention {number} is closed", number=number))
    employee = tx.execute(
        "SELECT id, email, name, language, active FROM employees WHERE email = ?",
        (employee_email.strip().lower(),),
    ).fetchone()
    if employee is None:
        raise NotFound(msg("no employee with address {email}", email=employee_email))
    if not employee["active"]:
        raise Conflict(msg("employee {email} is not active", email=employee_email))
    try:
        assignment_id: int = tx.execute(
            "INSERT INTO assignments (intervention_number, employee_id, assigned_by, created_at,"
            " team_dispatch_id) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (number, employee["id"], assigned_by, iso(now), team_dispatch_id),
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("{email} is already assigned to {number}", email=employee_email,
                           number=number)) from None
    message_id = queue_assignment_mail(tx, assignment_id, number, employee, now=now,
                                       settings=settings, reply_keys=reply_keys, note=note,
                                       step=step)
    plan_new_assignment(tx, assignment_id, now=now, settings=settings)
    log.info("assignment.created", intervention=number, employee=employee["email"],
             assignment_id=assignment_id, message_id=message_id)
    return assignment_id


def queue_assignment_mail(tx: WriteTx, assignment_id: int, number: int, employee: DbRow, *,
                          now: datetime, settings: Settings, reply_keys: Sequence[bytes],
                          note: str = "", step: dict[str, Any] | None = None) -> str:
    """Queue the assignment mail of `assignment_id` to `employee` (id, email, name,
    language) and make it the mail replies are matched by; its Message-ID."""
    token = make_token(reply_keys[0], assignment_id, number, employee["email"])
    context = assignment_context(tx, number)
    context.update(road_context(tx, number, today=now.date()))
    context.update(
        note=note.strip(), attachments=files_to_attach(context["case_attachments"]),
        employee_name=employee["name"], company_name=settings.mail.company_name,
        reply_to=reply_address(settings.mail.support_addresses[0], token),
    )
    calendar = visit_window(context, assignment_id=assignment_id, domain=own_domain(settings),
                            organizer=settings.mail.support_addresses[0],
                            attendee=employee["email"])
    if calendar is not None:
        context["calendar"] = calendar
    if step is not None:
        context["step"] = step
    message_id = enqueue_mail(
        tx,
        OutgoingMail(kind=OutboxKind.ASSIGNMENT, recipient=employee["email"], template="assignment",
                     language=employee["language"], context=context,
                     intervention_number=number, thread_kind=MessageKind.ASSIGNMENT_MAIL),
        now=now, domain=own_domain(settings),
    )
    tx.execute("UPDATE assignments SET mail_message_id = ? WHERE id = ?",
               (message_id, assignment_id))
    return message_id


def assign_team(
    tx: WriteTx,
    number: int,
    team: str,
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes],
    assigned_by: str = "",
    note: str = "",
) -> list[int]:
    """Put every active member of the team named on an open intervention, each mailed as
    any assignment; the first to confirm takes the job (tickets.teams). Their ids."""
    if intervention_status(tx, number) is Status.CLOSED:
        raise Conflict(msg("intervention {number} is closed", number=number))
    dispatch_id, members = open_dispatch(tx, number, team, now=now)
    ids = [assign(tx, number, member, now=now, settings=settings, reply_keys=reply_keys,
                  assigned_by=assigned_by, note=note, team_dispatch_id=dispatch_id)
           for member in members]
    log.info("assignment.team", intervention=number, team=team, members=len(ids))
    return ids


def files_to_attach(case_attachments: list[dict[str, Any]],
                    limit: int = MAX_ATTACHED_BYTES) -> list[dict[str, str]]:
    """The customer's files that travel on the assignment mail, in order, while the
    total stays under `limit`; the template lists the rest as too large."""
    chosen, total = [], 0
    for attachment in case_attachments:
        if total + attachment["size"] > limit:
            continue
        total += attachment["size"]
        chosen.append({"sha256": attachment["sha256"], "filename": attachment["filename"],
                       "content_type": attachment["content_type"]})
    return chosen


def assignment_context(tx: WriteTx, number: int) -> dict[str, Any]:
    """Every case detail the technician needs, as JSON-ready data for the template."""
    row = tx.execute(
        "SELECT i.*, c.name AS customer_name, c.email AS customer_email, c.phone AS"
        " customer_phone, c.address AS customer_address, ct.name AS contact_name,"
        " ct.email AS contact_email, ct.phone AS contact_phone,"
        " t.name_en AS type_en, t.name_it AS type_it, t.name_ro AS type_ro"
        " FROM interventions i JOIN customers c ON c.id = i.customer_id"
        " LEFT JOIN contacts ct ON ct.id = i.contact_id"
        " LEFT JOIN request_types t ON t.code = i.request_type WHERE i.number = ?",
        (number,),
    ).fetchone()
    if row is None:
        raise NotFound(msg("intervention {number} does not exist", number=number))
    attachments = tx.execute(
        "SELECT a.sha256, a.filename, a.content_type, a.size FROM attachments a"
        " JOIN messages m ON m.id = a.message_id"
        # The customer's files only: a technician's site photos are not "the case".
        " WHERE m.intervention_number = ? AND m.kind = ? AND a.inline = 0 ORDER BY a.id",
        (number, MessageKind.CUSTOMER_MAIL),
    ).fetchall()
    return {
        "number": number, "tag": format_tag(number), "subject": row["subject"],
        "description": row["description"], "request_type": row["request_type"],
        # The composer makes `request_type_name` of these in the mail's language.
        "request_type_names": {"en": row["type_en"] or "", "it": row["type_it"] or "",
                               "ro": row["type_ro"] or ""},
        "priority": row["priority"], "desired_from": row["desired_from"],
        "desired_to": row["desired_to"],
        "customer": {"name": row["customer_name"], "email": row["customer_email"],
                     "phone": row["customer_phone"] or "",
                     "address": row["customer_address"] or ""},
        "contact": {"name": row["contact_name"] or "", "email": row["contact_email"] or "",
                    "phone": row["contact_phone"] or ""},
        "case_attachments": [dict(a) for a in attachments],
    }


def find_assignment_for_reply(
    tx: WriteTx,
    mail: ParsedMail,
    *,
    sender: str,
    envelope_to: Sequence[str],
    settings: Settings,
    reply_keys: Sequence[bytes],
) -> AssignmentMatch | None:
    """The assignment this mail answers, if any (not yet whether it may act on it)."""
    if not may_name_assignment(mail, envelope_to):
        # The same test let the parse step skip reading the mail as an answer.
        return None
    support = settings.mail.support_addresses
    for address in [*envelope_to, *mail.to_addrs, *mail.cc_addrs]:
        extension = plus_extension(address)
        if not extension or not is_support_recipient(address, support):
            continue
        claimed = parse_token(extension)
        if claimed is None:
            continue
        match = _load(tx, MatchedBy.TOKEN, (claimed.assignment_id,))
        # The signature binds the employee the mail went to; a tampered token fails here.
        if match and verify_token(reply_keys, extension, match.employee_email):
            return match
    match = _first_by_message_id(tx, [*mail.in_reply_to, *reversed(mail.references)])
    if match:
        return match
    tag = parse_tag(mail.subject)
    if tag is not None:
        return _load(tx, MatchedBy.TAG, (tag, sender))
    return None


_MATCH_SQL = (
    "SELECT a.id, a.intervention_number, a.status, e.email, e.name, e.language,"
    " a.mail_message_id FROM assignments a JOIN employees e ON e.id = a.employee_id WHERE "
)
# References looked up in one statement (a long References header takes several).
REFS_PER_READ = 50
# How a reply can name its assignment; fixed clauses, parameters bound by sqlite.
_MATCH_BY = {
    MatchedBy.TOKEN: _MATCH_SQL + "a.id = ?",
    MatchedBy.MESSAGE_ID: _MATCH_SQL + "a.mail_message_id = ?",
    MatchedBy.TAG: _MATCH_SQL + "a.intervention_number = ? AND e.email = ?",
}


def hold_for_answer(tx: WriteTx, match: AssignmentMatch) -> AssignmentMatch:
    """`match` as it stands now, held against other writers until the commit: two
    answers on one assignment reaching two daemons at once are ruled one after the
    other, the second on the decision the first made (its status, its Date)."""
    if not xact_lock.hold(tx, "assignment", match.assignment_id):
        return match
    fresh = _load(tx, MatchedBy.TOKEN, (match.assignment_id,))
    return match if fresh is None else replace(fresh, matched_by=match.matched_by)


def _first_by_message_id(tx: WriteTx, refs: Sequence[str]) -> AssignmentMatch | None:
    """The assignment whose mail is the first of `refs` to name one, the references
    looked up together rather than one statement each (on PostgreSQL each statement
    read is a round trip the one writer waits for)."""
    for start in range(0, len(refs), REFS_PER_READ):
        chunk = refs[start:start + REFS_PER_READ]
        marks = ", ".join("?" for _ in chunk)
        rows = tx.execute(f"{_MATCH_SQL}a.mail_message_id IN ({marks})", chunk).fetchall()
        if rows:
            order: dict[str, int] = {}
            for n, ref in enumerate(chunk):
                order.setdefault(ref, n)
            return _match_of(min(rows, key=lambda r: order[r["mail_message_id"]]),
                             MatchedBy.MESSAGE_ID)
    return None


def _load(tx: WriteTx, matched_by: MatchedBy, params: tuple[Any, ...]
          ) -> AssignmentMatch | None:
    row = tx.execute(_MATCH_BY[matched_by], params).fetchone()
    return None if row is None else _match_of(row, matched_by)


def _match_of(row: DbRow, matched_by: MatchedBy) -> AssignmentMatch:
    return AssignmentMatch(row["id"], row["intervention_number"], row["email"], row["name"],
                           row["language"], AssignmentStatus(row["status"]), matched_by)


@dataclass(frozen=True)
class ReplyEffect:
    acted: bool
    verified: bool
    verdict: Verdict
    note: str                  # why it did not act, for the inbound log


def answer_facts(
    tx: WriteTx,
    match: AssignmentMatch,
    reading: ReplyReading,
    *,
    sender: str,
    sender_doubt: str,
    written_at: datetime,
) -> AnswerFacts:
    """What the rules need to know about a mail that names `match` (see tickets.triage)."""
    row = tx.execute("SELECT decided_mail_date FROM assignments WHERE id = ?",
                     (match.assignment_id,)).fetchone()
    decision_written_at = datetime.fromisoformat(row[0]) if row and row[0] else None
    same_answer = tx.execute("SELECT 1 FROM assignment_answers WHERE assignment_id = ?"
                             " AND body_sha256 = ?",
                             (match.assignment_id, _answer_key(reading))).fetchone()
    return AnswerFacts(
        number=match.intervention_number, matched_by=match.matched_by,
        # The exact address: a plus-address of the employee's mailbox is a From anyone
        # can write, and an answer changes the assignment.
        from_employee=normalize(sender) == match.employee_email,
        sender_doubt=sender_doubt,
        # A resolved case still takes reports: a second one corrects the first.
        case_open=intervention_status(tx, match.intervention_number) is not Status.CLOSED,
        written_at=written_at, decision_written_at=decision_written_at,
        same_answer_applied=same_answer is not None,
        taken_by_colleague=taken_by_colleague(tx, match.assignment_id),
    )


def record_reply(
    tx: WriteTx,
    match: AssignmentMatch,
    reading: ReplyReading,
    message: NewMessage,
    ruling: Ruling,
    *,
    sender: str,
    written_at: datetime,
    now: datetime,
    settings: Settings,
) -> ReplyEffect:
    """Put the reply on the thread; change the assignment when the ruling says so."""
    number = match.intervention_number
    acts = ruling.disposition is Disposition.DECISION
    note = ruling.reason if not acts else ""
    if acts and reading.verdict is Verdict.CONFIRMED:
        # On a team assignment only the first confirmation takes the job.
        colleague = claim_job(tx, match.assignment_id, now=now, settings=settings,
                              case_context=assignment_context)
        if colleague:
            acts, note = False, f"taken by {colleague}"
    new_status = _next_status(match.status, reading.verdict) if acts else match.status
    report: MessageExtra = {}
    if reading.verdict in REPORTS:
        report = {"work_minutes": reading.work_minutes,
                  "travel_minutes": reading.travel_minutes,
                  **({"hours_unread": True} if reading.hours_unread else {})}
    message_row = add_message(tx, number, NewMessage(
        kind=MessageKind.TECHNICIAN_REPLY, direction=Direction.IN, subject=message.subject,
        body_text=reading.body, body_html=message.body_html,
        html_sanitizer=message.html_sanitizer, author=message.author,
        from_addr=message.from_addr, to_addrs=message.to_addrs, cc_addrs=message.cc_addrs,
        message_id=message.message_id, inbound_id=message.inbound_id,
        verdict=reading.verdict, verified=ruling.verified, attachments=message.attachments,
        extra={"assignment_id": match.assignment_id, "employee": match.employee_email,
               "matched_by": match.matched_by, "acted": acts, "reason": reading.reason,
               **({"not_acted": note} if note else {}), **report},
    ), now=now)
    if not acts:
        log.warning("assignment.reply_not_acted", intervention=number,
                    assignment_id=match.assignment_id, sender=sender, why=note)
        return ReplyEffect(False, ruling.verified, reading.verdict, note)
    if reading.verdict in REPORTS:
        apply_report(tx, number=number, assignment_id=match.assignment_id,
                     employee={"email": match.employee_email, "name": match.employee_name,
                               "language": match.employee_language},
                     reading=reading, message_row=message_row,
                     reply_message_id=message.message_id, written_at=written_at, now=now,
                     settings=settings)
        _remember_answer(tx, match.assignment_id, reading, now=now)
        tx.execute("UPDATE assignments SET decided_mail_date = ? WHERE id = ?",
                   (iso(written_at), match.assignment_id))
        return ReplyEffect(True, True, reading.verdict, "")
    decided = reading.verdict in (Verdict.CONFIRMED, Verdict.REJECTED)
    tx.execute(
        "UPDATE assignments SET status = ?, reason = CASE WHEN ? THEN ? ELSE reason END,"
        " decided_at = CASE WHEN ? THEN ? ELSE decided_at END WHERE id = ?",
        (new_status, decided, reading.reason, decided, iso(now), match.assignment_id),
    )
    _queue_follow_up_mails(tx, match, reading, reply_message_id=message.message_id, now=now,
                           settings=settings)
    if reading.verdict is Verdict.CONFIRMED:
        # A sequence step that needs no report is finished by its confirmation.
        step_finished(tx, match.assignment_id, reported_done=False, now=now,
                      settings=settings)
    if decided:
        tx.execute("UPDATE assignments SET decided_mail_date = ? WHERE id = ?",
                   (iso(written_at), match.assignment_id))
        _remember_answer(tx, match.assignment_id, reading, now=now)
    if reading.verdict is Verdict.REJECTED:
        after_rejection(tx, match.assignment_id, now=now, settings=settings,
                        case_context=assignment_context)
    log.info(f"assignment.{reading.verdict}", intervention=number,
             assignment_id=match.assignment_id, employee=match.employee_email)
    return ReplyEffect(True, True, reading.verdict, "")


def _remember_answer(tx: WriteTx, assignment_id: int, reading: ReplyReading, *,
                     now: datetime) -> None:
    """These words were applied: the same mail sent again is a replay."""
    tx.execute("INSERT INTO assignment_answers (assignment_id, body_sha256, verdict,"
               " applied_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
               (assignment_id, _answer_key(reading), reading.verdict, iso(now)))


def _answer_key(reading: ReplyReading) -> str:
    """The same words (case and spacing aside) give the same key."""
    folded = " ".join(reading.body.casefold().split())
    return hashlib.sha256(f"{reading.verdict}\n{folded}".encode()).hexdigest()


def _next_status(current: AssignmentStatus, verdict: Verdict) -> AssignmentStatus:
    if verdict is Verdict.CONFIRMED:
        return AssignmentStatus.CONFIRMED
    if verdict is Verdict.REJECTED:
        return AssignmentStatus.REJECTED
    # An unreadable reply flags a pending assignment; a decision already taken stands.
    if current in (AssignmentStatus.PENDING, AssignmentStatus.UNCLEAR):
        return AssignmentStatus.UNCLEAR
    return current


def _queue_follow_up_mails(tx: WriteTx, match: AssignmentMatch,
                           reading: ReplyReading, *, reply_message_id: str | None,
                           now: datetime, settings: Settings) -> None:
    number = match.intervention_number
    context = assignment_context(tx, number)
    # The echo sits under the technician's own reply in their mail client.
    thread = [reply_message_id] if reply_message_id else []
    context.update(in_reply_to=thread, references=thread,
                   verdict=str(reading.verdict), reason=reading.reason,
                   employee_name=match.employee_name, employee_email=match.employee_email,
                   company_name=settings.mail.company_name)
    domain = own_domain(settings)
    echo = dict(context)
    if reading.verdict is Verdict.REJECTED:
        # Out of the technician's calendar again, if their client added the invitation.
        withdrawn = visit_window(context, assignment_id=match.assignment_id, domain=domain,
                                 organizer=settings.mail.support_addresses[0],
                                 attendee=match.employee_email, method=CANCEL)
        if withdrawn is not None:
            echo["calendar"] = withdrawn
    enqueue_mail(tx, OutgoingMail(
        kind=OutboxKind.DECISION_ECHO, recipient=match.employee_email, template="decision_echo",
        language=match.employee_language, context=echo, intervention_number=number,
    ), now=now, domain=domain)
    # A team member's no is not news yet: the operators hear when the whole team said no.
    if reading.verdict is Verdict.REJECTED and not in_team(tx, match.assignment_id):
        for operator in settings.mail.operator_addresses:
            enqueue_mail(tx, OutgoingMail(
                kind=OutboxKind.REJECTION_NOTICE, recipient=operator,
                template="assignment_rejected",
                language=settings.mail.default_language, context=context,
                intervention_number=number,
            ), now=now, domain=domain)


def apply_reply_as_operator(tx: WriteTx, message_id: int, *, operator: str, now: datetime,
                            settings: Settings) -> int:
    """An operator applies a technician's reply that was kept without acting (a tag-only
    match, a From in doubt, a replay...): its verdict becomes the assignment's, the echo
    and notices go out as for a reply that acted, and the thread says who applied it.
    Returns the intervention's number."""
    row = tx.execute("SELECT intervention_number, kind, verdict, body_text, extra FROM messages"
                     " WHERE id = ?", (message_id,)).fetchone()
    if row is None or row["kind"] != MessageKind.TECHNICIAN_REPLY:
        raise NotFound(msg("no technician reply {id}", id=message_id))
    extra = load_extra(row["extra"])
    if extra.get("acted") or extra.get("applied_by"):
        raise Conflict(msg("this reply was applied already"))
    if row["verdict"] not in (Verdict.CONFIRMED, Verdict.REJECTED):
        raise Conflict(msg("this reply says neither yes nor no: assign or call instead"))
    number = int(row["intervention_number"])
    if intervention_status(tx, number) is Status.CLOSED:
        raise Conflict(msg("intervention {number} is closed", number=number))
    match = _load(tx, MatchedBy.TOKEN, (extra.get("assignment_id"),))
    if match is None:
        raise NotFound(msg("the assignment of this reply no longer exists"))
    match = hold_for_answer(tx, match)
    verdict = Verdict(row["verdict"])
    if match.status is AssignmentStatus.TAKEN:
        raise Conflict(msg("a colleague of the team took this job"))
    if verdict is Verdict.CONFIRMED:
        colleague = claim_job(tx, match.assignment_id, now=now, settings=settings,
                              case_context=assignment_context)
        if colleague:
            raise Conflict(msg("{email} of the team took this job", email=colleague))
    reading = ReplyReading(verdict, str(extra.get("reason", "")), row["body_text"])
    tx.execute("UPDATE assignments SET status = ?, reason = ?, decided_at = ?,"
               " decided_mail_date = ? WHERE id = ?",
               (_next_status(match.status, verdict), reading.reason, iso(now), iso(now),
                match.assignment_id))
    extra["applied_by"], extra["applied_at"] = operator, iso(now)
    # Guarded on the reply being as read: two operators applying it at once (two
    # daemons' pages) apply it once; the other's whole change is undone with Conflict.
    applied = tx.execute("UPDATE messages SET extra = ? WHERE id = ? AND extra = ?",
                         (dump_extra(extra), message_id, row["extra"])).rowcount
    if applied != 1:
        raise Conflict(msg("this reply was applied already"))
    add_message(tx, number, NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=operator,
        body_text=f"Applied the reply of {match.employee_email} ({verdict}) by hand.",
        extra={"applied_message": message_id},
    ), now=now)
    _queue_follow_up_mails(tx, match, reading, reply_message_id=None, now=now,
                           settings=settings)
    if verdict is Verdict.CONFIRMED:
        step_finished(tx, match.assignment_id, reported_done=False, now=now,
                      settings=settings)
    if verdict is Verdict.REJECTED:
        after_rejection(tx, match.assignment_id, now=now, settings=settings,
                        case_context=assignment_context)
    log.info("assignment.applied_by_operator", intervention=number,
             assignment_id=match.assignment_id, operator=operator, verdict=str(verdict))
    return number
