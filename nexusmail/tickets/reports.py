"""Work reports by reply: what a technician's "done" or "not done" changes.

Ruled like any answer to an assignment mail (tickets.triage: only the assigned
employee, provably answering that mail), then carried out here in the same
transaction: the assignment's status, the report's activity (tickets.activities), the
echo to the technician ("Recorded: 2.5 h on #42", so a misread is caught at once),
and the intervention's resolution when every confirmed technician has reported done.

- done: the assignment becomes `done`. When no confirmed assignee is left without a
  done report, the intervention becomes `resolved` (an operator closes or reopens it):
  the operators are told, and the customer gets a closing mail when the intervention
  or `[reports] customer_closing_mail` asks for it.
- not done: a confirmed assignment stays (a done one goes back to) `confirmed`, one
  never confirmed becomes `unclear` (a not-done report is no yes); a resolved
  intervention is open again, and the operators are told why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.mail.reply_reading import ReplyReading, Verdict
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.activities import ReportActivity, format_hours, record_report_activity
from nexusmail.tickets.cases import NewMessage, add_message
from nexusmail.tickets.customer_closing import queue_closing_mail
from nexusmail.tickets.models import AssignmentStatus, Direction, MessageKind, OutboxKind, Status
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.recurrence import local_date
from nexusmail.tickets.sequence_plan import sequence_running, step_finished
from nexusmail.tickets.tags import format_tag

log = structlog.get_logger(__name__)


def apply_report(
    tx: WriteTx,
    *,
    number: int,
    assignment_id: int,
    employee: dict[str, str],
    reading: ReplyReading,
    message_row: int,
    reply_message_id: str | None,
    written_at: datetime,
    now: datetime,
    settings: Settings,
) -> None:
    """Carry out a work report that the rules let act. `employee` holds the assigned
    employee's email, name and language."""
    done = reading.verdict is Verdict.DONE
    current = AssignmentStatus(tx.execute("SELECT status FROM assignments WHERE id = ?",
                                          (assignment_id,)).fetchone()[0])
    tx.execute("UPDATE assignments SET status = ?, report = ?, reason = ? WHERE id = ?",
               (_status_after(current, done), str(reading.verdict), reading.reason,
                assignment_id))
    if done:
        # A sequence step done: its next step is scheduled before resolution is judged.
        step_finished(tx, assignment_id, reported_done=True, now=now, settings=settings)
    record_report_activity(tx, ReportActivity(
        number=number, assignment_id=assignment_id, employee_email=employee["email"],
        day=local_date(written_at, settings.scheduler.timezone),
        work_minutes=reading.work_minutes, travel_minutes=reading.travel_minutes,
        text=reading.body, verdict=str(reading.verdict), message_row=message_row,
    ), now=now)
    case = _case(tx, number)
    context = {
        "number": number, "tag": format_tag(number), "subject": case["subject"],
        "verdict": str(reading.verdict), "reason": reading.reason,
        "hours": format_hours(reading.work_minutes, employee["language"]),
        "travel_hours": format_hours(reading.travel_minutes, employee["language"]),
        "employee_name": employee["name"], "employee_email": employee["email"],
        "company_name": settings.mail.company_name,
    }
    thread = [reply_message_id] if reply_message_id else []
    domain = own_domain(settings)
    enqueue_mail(tx, OutgoingMail(
        kind=OutboxKind.REPORT_ECHO, recipient=employee["email"], template="report_echo",
        language=employee["language"],
        context={**context, "in_reply_to": thread, "references": thread},
        intervention_number=number,
    ), now=now, domain=domain)
    if done:
        _resolve_when_all_done(tx, number, context, now=now, settings=settings)
    else:
        if case["status"] == Status.RESOLVED:
            _reopen_resolved(tx, number, now=now,
                             note=f"{employee['email']} reported the job not finished.")
        _tell_operators(tx, OutboxKind.REPORT_NOT_DONE, "report_not_done", context,
                        number=number, now=now, settings=settings)
    log.info(f"report.{reading.verdict}", intervention=number, assignment_id=assignment_id,
             employee=employee["email"], work_minutes=reading.work_minutes,
             travel_minutes=reading.travel_minutes)


def _status_after(current: AssignmentStatus, done: bool) -> AssignmentStatus:
    """Done is done whatever came before (the technician did the job). Not done keeps a
    confirmed job confirmed (a done one goes back to confirmed); on an assignment never
    confirmed it confirms nothing ("non posso oggi, torno domani" is no yes): unclear,
    for an operator to read."""
    if done:
        return AssignmentStatus.DONE
    if current in (AssignmentStatus.CONFIRMED, AssignmentStatus.DONE):
        return AssignmentStatus.CONFIRMED
    return AssignmentStatus.UNCLEAR


def _resolve_when_all_done(tx: WriteTx, number: int, context: dict[str, Any], *,
                           now: datetime, settings: Settings) -> None:
    """Resolve an open intervention whose confirmed assignees have all reported done
    (and where nobody's last report said the job is not finished), unless an action
    sequence still has steps to go."""
    # Two last reports at once on two daemons would each count the other still to
    # finish, and the case would never resolve: the second counts after the first.
    xact_lock.hold(tx, "intervention", number)
    # Still to finish: a confirmed technician, or one whose last word was "not done".
    waiting = tx.execute(
        "SELECT count(*) FROM assignments WHERE intervention_number = ? AND (status = ?"
        " OR (report = ? AND status <> ?))",
        (number, AssignmentStatus.CONFIRMED, Verdict.NOT_DONE,
         AssignmentStatus.REJECTED)).fetchone()[0]
    if waiting or sequence_running(tx, number):
        return
    # Guarded: only an open case resolves (a closed or held one is the operator's call).
    changed = tx.execute(
        "UPDATE interventions SET status = ?, resolved_at = ?, updated_at = ?"
        " WHERE number = ? AND status = ?",
        (Status.RESOLVED, iso(now), iso(now), number, Status.OPEN)).rowcount
    if changed != 1:
        return
    add_message(tx, number, NewMessage(
        kind=MessageKind.STATUS_CHANGE, direction=Direction.INTERNAL, author="nexusmail",
        body_text="Every confirmed technician reported the job done.",
        extra={"status": Status.RESOLVED}), now=now)
    _tell_operators(tx, OutboxKind.RESOLVED_NOTICE, "intervention_resolved", context,
                    number=number, now=now, settings=settings)
    queue_closing_mail(tx, number, now=now, settings=settings)
    log.info("intervention.resolved", intervention=number)


def _reopen_resolved(tx: WriteTx, number: int, *, now: datetime, note: str) -> None:
    """Back to open, guarded on still being resolved: an operator's closing (or another
    report's reopening) written meanwhile stands, and the thread gets one entry."""
    changed = tx.execute("UPDATE interventions SET status = ?, updated_at = ?"
                         " WHERE number = ? AND status = ?",
                         (Status.OPEN, iso(now), number, Status.RESOLVED)).rowcount
    if changed != 1:
        return
    add_message(tx, number, NewMessage(
        kind=MessageKind.STATUS_CHANGE, direction=Direction.INTERNAL, author="nexusmail",
        body_text=note, extra={"status": Status.OPEN}), now=now)


def _tell_operators(tx: WriteTx, kind: OutboxKind, template: str, context: dict[str, Any],
                    *, number: int, now: datetime, settings: Settings) -> None:
    for operator in settings.mail.operator_addresses:
        enqueue_mail(tx, OutgoingMail(
            kind=kind, recipient=operator, template=template,
            language=settings.mail.default_language, context=context,
            intervention_number=number,
        ), now=now, domain=own_domain(settings))


def _case(tx: WriteTx, number: int) -> Any:
    return tx.execute("SELECT subject, status FROM interventions WHERE number = ?",
                      (number,)).fetchone()
