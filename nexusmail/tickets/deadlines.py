"""The steps that chase SLA deadlines, carried out (runs in `Store.write`): a reminder
to the technician, an alert to the operators, a warning before a resolution deadline,
and the low-hours warning of a contract. The steps are planned by tickets.sla_plan.

Exactly once: a step is an sla_steps row (UNIQUE intervention, assignment, step),
taken by a guarded UPDATE (done_at IS NULL, one row changed) in the same transaction
that queues its mail and writes it on the thread. A second tick, a restart or a second
daemon on the same database finds it taken and does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.storage.connections import DbRow, WriteTx, dialect_of
from nexusmail.tickets.assignments import assignment_context
from nexusmail.tickets.cases import NewMessage, add_message
from nexusmail.tickets.contracts import used_hours
from nexusmail.tickets.models import (
    AssignmentStatus,
    Direction,
    MessageKind,
    OutboxKind,
    Status,
)
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.sla_plan import ESCALATE, REMIND, RESOLUTION_WARNING

log = structlog.get_logger(__name__)

SENT, MOOT = "sent", "moot"
AUTHOR = "nexusmail"


@dataclass(frozen=True)
class StepDone:
    """What carrying out one step did (None from run_step: another got there first)."""

    intervention_number: int
    step: str
    outcome: str          # sent | moot
    mails: int


def run_step(tx: WriteTx, step_id: int, *, now: datetime,
             settings: Settings) -> StepDone | None:
    """Take one due step and carry it out; None when it was taken already."""
    # Several daemons sweep the same steps: on PostgreSQL the one carrying a step out
    # locks it, the others pass it by; the guarded UPDATE below stays the safety net.
    skip_locked = " FOR UPDATE SKIP LOCKED" if dialect_of(tx) == "postgresql" else ""
    step = tx.execute("SELECT * FROM sla_steps WHERE id = ?"  # noqa: S608 (constant)
                      f" AND done_at IS NULL{skip_locked}", (step_id,)).fetchone()
    if step is None:
        return None
    number = step["intervention_number"]
    case = tx.execute("SELECT status, resolution_due FROM interventions WHERE number = ?",
                      (number,)).fetchone()
    assignment = None
    if step["assignment_id"]:
        assignment = tx.execute(
            "SELECT a.id, a.status, a.mail_message_id, a.created_at, e.email, e.name,"
            " e.language FROM assignments a JOIN employees e ON e.id = a.employee_id"
            " WHERE a.id = ?", (step["assignment_id"],)).fetchone()
    live = case is not None and case["status"] == Status.OPEN and (
        assignment is None if step["step"] == RESOLUTION_WARNING
        else assignment is not None and assignment["status"] == AssignmentStatus.PENDING)
    outcome = SENT if live else MOOT
    taken = tx.execute("UPDATE sla_steps SET done_at = ?, outcome = ? WHERE id = ?"
                       " AND done_at IS NULL", (iso(now), outcome, step_id)).rowcount
    if taken != 1:
        return None
    if not live:
        return StepDone(number, step["step"], MOOT, 0)
    if step["step"] == REMIND and assignment is not None:
        mails = _remind(tx, number, assignment, now=now, settings=settings)
    elif step["step"] == ESCALATE and assignment is not None:
        mails = _escalate(tx, number, assignment, now=now, settings=settings)
    else:
        mails = _warn_resolution(tx, number, case["resolution_due"], now=now,
                                 settings=settings)
    log.info("sla.step", intervention=number, step=step["step"],
             assignment_id=step["assignment_id"] or None, mails=mails)
    return StepDone(number, step["step"], SENT, mails)


def _remind(tx: WriteTx, number: int, assignment: DbRow, *, now: datetime,
            settings: Settings) -> int:
    hours = settings.sla.remind_after_hours
    context = assignment_context(tx, number)
    thread = [assignment["mail_message_id"]] if assignment["mail_message_id"] else []
    context.update(employee_name=assignment["name"], company_name=settings.mail.company_name,
                   hours=_shown(hours), assigned_at=assignment["created_at"],
                   in_reply_to=thread, references=thread)
    reply_to = _assignment_reply_to(tx, assignment["mail_message_id"])
    if reply_to:
        # The same signed address as the assignment mail: answering the reminder acts.
        context["reply_to"] = reply_to
    enqueue_mail(tx, OutgoingMail(
        kind=OutboxKind.ASSIGNMENT_REMINDER, recipient=assignment["email"],
        template="assignment_reminder", language=assignment["language"], context=context,
        intervention_number=number,
    ), now=now, domain=own_domain(settings))
    _note(tx, number, f"No answer from {assignment['email']} to the assignment after"
          f" {_shown(hours)} business hours: reminder sent.", REMIND, now=now)
    return 1


def _escalate(tx: WriteTx, number: int, assignment: DbRow, *, now: datetime,
              settings: Settings) -> int:
    hours = settings.sla.escalate_after_hours
    context = assignment_context(tx, number)
    context.update(employee_name=assignment["name"], employee_email=assignment["email"],
                   hours=_shown(hours), company_name=settings.mail.company_name)
    mails = _tell_operators(tx, number, "sla_no_answer", context, now=now,
                            settings=settings)
    _note(tx, number, f"No answer from {assignment['email']} to the assignment after"
          f" {_shown(hours)} business hours: operators alerted.", ESCALATE, now=now)
    return mails


def _warn_resolution(tx: WriteTx, number: int, resolution_due: str | None, *,
                     now: datetime, settings: Settings) -> int:
    context = assignment_context(tx, number)
    context.update(resolution_due=resolution_due or "",
                   company_name=settings.mail.company_name)
    mails = _tell_operators(tx, number, "sla_resolution_warning", context, now=now,
                            settings=settings)
    _note(tx, number, f"The resolution deadline ({resolution_due}) is near and the"
          " intervention is still open: operators alerted.", RESOLUTION_WARNING, now=now)
    return mails


def check_contract_hours(tx: WriteTx, contract_id: int, *, now: datetime,
                         settings: Settings) -> bool:
    """Tell the operators, once, that a contract's prepaid hours run low. True when
    the warning was queued now."""
    threshold = settings.contracts.low_hours_alert
    contract = tx.execute(
        "SELECT c.id, c.code, c.prepaid_hours, cu.name AS customer_name FROM contracts c"
        " JOIN customers cu ON cu.id = c.customer_id WHERE c.id = ?"
        " AND c.prepaid_hours IS NOT NULL AND c.low_hours_alerted_at IS NULL",
        (contract_id,)).fetchone()
    if threshold <= 0 or contract is None:
        return False
    remaining = contract["prepaid_hours"] - used_hours(tx, contract_id)
    if remaining >= threshold:
        return False
    taken = tx.execute("UPDATE contracts SET low_hours_alerted_at = ? WHERE id = ?"
                       " AND low_hours_alerted_at IS NULL", (iso(now), contract_id)).rowcount
    if taken != 1:
        return False
    context = {"code": contract["code"], "customer_name": contract["customer_name"],
               "prepaid_hours": _shown(contract["prepaid_hours"]),
               "remaining_hours": _shown(remaining), "threshold": _shown(threshold),
               "company_name": settings.mail.company_name}
    for operator in settings.mail.operator_addresses:
        enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.CONTRACT_HOURS, recipient=operator, template="contract_low_hours",
            language=settings.mail.default_language, context=context,
        ), now=now, domain=own_domain(settings))
    log.info("contract.low_hours", contract_id=contract_id, code=contract["code"],
             remaining_hours=round(remaining, 2), threshold=threshold)
    return True


def _tell_operators(tx: WriteTx, number: int, template: str, context: dict[str, Any], *,
                    now: datetime, settings: Settings) -> int:
    for operator in settings.mail.operator_addresses:
        enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.SLA_ALERT, recipient=operator, template=template,
            language=settings.mail.default_language, context=context,
            intervention_number=number,
        ), now=now, domain=own_domain(settings))
    return len(settings.mail.operator_addresses)


def _note(tx: WriteTx, number: int, text: str, step: str, *, now: datetime) -> None:
    add_message(tx, number, NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=AUTHOR, body_text=text,
        extra={"sla_step": step}), now=now)


def _assignment_reply_to(tx: WriteTx, mail_message_id: str | None) -> str:
    if not mail_message_id:
        return ""
    row = tx.execute("SELECT context FROM outbox WHERE message_id = ?",
                     (mail_message_id,)).fetchone()
    if row is None:
        return ""
    return str(json.loads(row["context"]).get("reply_to") or "")


def _shown(hours: float) -> str:
    """Hours as people write them: 4, 1.5, 0.25."""
    return f"{hours:g}"


