"""SLA deadlines and the steps that chase them, the write side (runs in `Store.write`).

Planning: an intervention's response and resolution deadlines are its request instant
plus the hours of the contract covering it (else the `[sla]` defaults), counted in
business hours; a pending assignment's reminder and escalation instants are its
creation plus `[sla] remind_after_hours` / `escalate_after_hours`. The deadline sweep
plans what is new (the rows whose sla_planned_at is NULL) and then carries out the
steps whose instant has come.

Exactly once: a step is an sla_steps row (UNIQUE intervention, assignment, step),
taken by a guarded UPDATE (done_at IS NULL, one row changed) in the same transaction
that queues its mail and writes it on the thread. A second tick, a restart or a second
daemon on the same database finds it taken and does nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.storage.connections import DbRow, WriteTx
from nexusmail.tickets.assignments import assignment_context
from nexusmail.tickets.cases import NewMessage, add_message
from nexusmail.tickets.contracts import covering_contract, used_hours
from nexusmail.tickets.models import (
    AssignmentStatus,
    Direction,
    MessageKind,
    OutboxKind,
    Status,
)
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.recurrence import local_date
from nexusmail.tickets.sla_calendar import AddBusinessHours, company_zone

log = structlog.get_logger(__name__)

REMIND, ESCALATE, RESOLUTION_WARNING = "remind", "escalate", "resolution_warning"
SENT, MOOT = "sent", "moot"
AUTHOR = "nexusmail"


@dataclass(frozen=True)
class StepDone:
    """What carrying out one step did (None from run_step: another got there first)."""

    intervention_number: int
    step: str
    outcome: str          # sent | moot
    mails: int


def plan_intervention(tx: WriteTx, number: int, *, now: datetime, settings: Settings,
                      add: AddBusinessHours) -> None:
    """Work out an intervention's contract and deadlines, and plan its warning step."""
    row = tx.execute(
        "SELECT customer_id, created_at, requested_at, status FROM interventions"
        " WHERE number = ?", (number,)).fetchone()
    if row is None:
        return
    start = _instant(row["requested_at"]) or datetime.fromisoformat(row["created_at"])
    contract = covering_contract(tx, row["customer_id"],
                                 local_date(start, company_zone(settings)))
    response = _hours(contract, "response_hours", settings.sla.response_hours)
    resolution = _hours(contract, "resolution_hours", settings.sla.resolution_hours)
    response_due = add(start, response) if response else None
    resolution_due = add(start, resolution) if resolution else None
    tx.execute(
        "UPDATE interventions SET contract_id = ?, response_due = ?, resolution_due = ?,"
        " sla_planned_at = ? WHERE number = ?",
        (contract["id"] if contract else None, _text(response_due), _text(resolution_due),
         iso(now), number))
    warn = settings.sla.warn_before_hours
    if resolution_due is not None and warn > 0 and row["status"] == Status.OPEN:
        _plan_step(tx, number, 0, RESOLUTION_WARNING, resolution_due - timedelta(hours=warn))


def plan_assignment(tx: WriteTx, assignment_id: int, *, now: datetime, settings: Settings,
                    add: AddBusinessHours) -> None:
    """Plan a new assignment's reminder and escalation (when configured)."""
    row = tx.execute("SELECT intervention_number, status, created_at FROM assignments"
                     " WHERE id = ?", (assignment_id,)).fetchone()
    if row is None:
        return
    created = datetime.fromisoformat(row["created_at"])
    if row["status"] == AssignmentStatus.PENDING:
        for step, hours in ((REMIND, settings.sla.remind_after_hours),
                            (ESCALATE, settings.sla.escalate_after_hours)):
            if hours > 0:
                _plan_step(tx, row["intervention_number"], assignment_id, step,
                           add(created, hours))
    tx.execute("UPDATE assignments SET sla_planned_at = ? WHERE id = ?",
               (iso(now), assignment_id))


def _plan_step(tx: WriteTx, number: int, assignment_id: int, step: str,
               due_at: datetime) -> None:
    # Planned again (a contract added later moves the deadline): a step not yet taken
    # moves with it; one already taken stays as it was.
    tx.execute(
        "INSERT INTO sla_steps (intervention_number, assignment_id, step, due_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (intervention_number, assignment_id, step)"
        " DO UPDATE SET due_at = excluded.due_at WHERE sla_steps.done_at IS NULL",
        (number, assignment_id, step, iso(due_at)))


def run_step(tx: WriteTx, step_id: int, *, now: datetime,
             settings: Settings) -> StepDone | None:
    """Take one due step and carry it out; None when it was taken already."""
    step = tx.execute("SELECT * FROM sla_steps WHERE id = ? AND done_at IS NULL",
                      (step_id,)).fetchone()
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


def _hours(contract: DbRow | None, column: str, default: float) -> float:
    if contract is not None and contract[column] is not None:
        return float(contract[column])
    return default


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a bare date or local time says too little to count hours from
    return moment


def _text(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


def _shown(hours: float) -> str:
    """Hours as people write them: 4, 1.5, 0.25."""
    return f"{hours:g}"


