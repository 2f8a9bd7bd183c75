"""Running an action sequence on an intervention: starting it, and moving on when a
step is finished (runs in `Store.write`).

A run copies the sequence's steps, so a plan edited later leaves the running ones as
they started. Step 1 is scheduled at once; each later step is scheduled when the one
before it is finished: reported done by a work report, or confirmed when the step
needs no report. It is due the step's `postpone_days` business days later (company
calendar) and mailed at the start of that working day, or at once for 0. Mailing a
scheduled step is tickets.sequence_steps' job (it needs the reply signing keys, which
the mail paths that finish a step do not hold); the sequence sweep does it.

Every move is a guarded UPDATE on the step's status (one row changed), in the
transaction of the reply that causes it: a replayed reply, a second daemon or a restart
finds the step moved already and does nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.i18n import Word, msg
from nexusmail.storage.connections import INTEGRITY_ERRORS, DbRow, WriteTx
from nexusmail.tickets.business_calendar import (
    BusinessCalendar,
    add_business_days,
    working_day_start,
)
from nexusmail.tickets.cases import Conflict, NewMessage, NotFound, add_message, intervention_status
from nexusmail.tickets.message_extra import MessageExtra
from nexusmail.tickets.models import AssignmentStatus, Direction, MessageKind, Status
from nexusmail.tickets.recurrence import local_date

log = structlog.get_logger(__name__)

AUTHOR = "nexusmail"


class StepStatus(StrEnum):
    PLANNED = "planned"        # an earlier step is not finished yet
    SCHEDULED = "scheduled"    # due: its mail goes out at mail_at
    ASSIGNED = "assigned"      # mailed to its employee or team
    BLOCKED = "blocked"        # could not be mailed (problem says why)
    DONE = "done"
    CANCELLED = "cancelled"    # the intervention was closed before it was mailed


class RunState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    STOPPED = "stopped"        # the intervention was closed before the end


def start_sequence(tx: WriteTx, number: int, code: str, *, started_by: str, now: datetime,
                   settings: Settings) -> int:
    """Start the sequence `code` on intervention `number`: step 1 is due now. Its run id."""
    if intervention_status(tx, number) is Status.CLOSED:
        raise Conflict(msg("intervention {number} is closed", number=number))
    sequence = tx.execute("SELECT id, code FROM sequences WHERE code = ?", (code,)).fetchone()
    if sequence is None:
        raise NotFound(msg("no sequence with code {code!r}", code=code))
    # Checked before the INSERT: on PostgreSQL a failed INSERT would end the transaction.
    if tx.execute("SELECT 1 FROM sequence_runs WHERE intervention_number = ?",
                  (number,)).fetchone() is not None:
        raise Conflict(msg("intervention {number} has a sequence already", number=number))
    try:
        run_id: int = tx.execute(
            "INSERT INTO sequence_runs (intervention_number, sequence_id, code, started_by,"
            " started_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
            (number, sequence["id"], sequence["code"], started_by, iso(now))).fetchone()[0]
    except INTEGRITY_ERRORS:  # a second daemon started one in the meantime
        raise Conflict(msg("intervention {number} has a sequence already", number=number)) from None
    steps = tx.execute(
        "INSERT INTO sequence_run_steps (run_id, number, employee_id, team_id, action,"
        " expected_hours, notes, postpone_days, needs_report) SELECT ?, number, employee_id,"
        " team_id, action, expected_hours, notes, postpone_days, needs_report"
        " FROM sequence_steps WHERE sequence_id = ?", (run_id, sequence["id"])).rowcount
    today = local_date(now, settings.calendar.timezone)
    tx.execute("UPDATE sequence_run_steps SET status = ?, due_on = ?, mail_at = ?"
               " WHERE run_id = ? AND number = 1",
               (StepStatus.SCHEDULED, today.isoformat(), iso(now), run_id))
    note(tx, number, f"Sequence {sequence['code']} started by {started_by}: {steps} steps.",
          {"sequence": sequence["code"], "sequence_event": "started"}, now=now)
    log.info("sequence.started", intervention=number, code=sequence["code"],
             started_by=started_by, steps=steps)
    return run_id


def start_by_trigger(tx: WriteTx, number: int, request_type: str | None, *, now: datetime,
                     settings: Settings) -> int | None:
    """A new intervention of a request type that triggers a sequence starts it (the first
    by code when several do); its run id, or None. The case may carry the type's code or
    one of its names (a schedule's cases carry "Service schedule" by default)."""
    if not request_type:
        return None
    row = tx.execute(
        "SELECT code FROM sequences WHERE trigger_request_type = ? OR trigger_request_type"
        " IN (SELECT code FROM request_types WHERE name_en = ? OR name_it = ? OR name_ro = ?)"
        " ORDER BY code LIMIT 1", (request_type,) * 4).fetchone()
    if row is None:
        return None
    return start_sequence(tx, number, row["code"], started_by=f"request type {request_type}",
                          now=now, settings=settings)


def step_finished(tx: WriteTx, assignment_id: int, *, reported_done: bool, now: datetime,
                  settings: Settings) -> bool:
    """An assignment was reported done (`reported_done`) or confirmed: when it is a
    sequence step's and that finishes the step, mark it done and schedule the next step
    (or end the run). True when a step was finished now."""
    step = tx.execute(
        "SELECT s.id, s.run_id, s.number, s.action, s.postpone_days, s.needs_report,"
        " r.intervention_number, r.code FROM sequence_run_steps s"
        " JOIN sequence_runs r ON r.id = s.run_id WHERE s.status = ? AND (s.assignment_id = ?"
        " OR s.team_dispatch_id = (SELECT team_dispatch_id FROM assignments WHERE id = ?))",
        (StepStatus.ASSIGNED, assignment_id, assignment_id)).fetchone()
    if step is None or (step["needs_report"] and not reported_done):
        return False
    finished = tx.execute("UPDATE sequence_run_steps SET status = ?, done_at = ?"
                          " WHERE id = ? AND status = ?",
                          (StepStatus.DONE, iso(now), step["id"], StepStatus.ASSIGNED)).rowcount
    if finished != 1:
        return False
    if not reported_done:
        # The confirmation was the whole job: the assignment is done, so it does not
        # hold the intervention's resolution as an unfinished confirmed job would.
        tx.execute("UPDATE assignments SET status = ? WHERE id = ? AND status = ?",
                   (AssignmentStatus.DONE, assignment_id, AssignmentStatus.CONFIRMED))
    number, code = step["intervention_number"], step["code"]
    who = tx.execute("SELECT e.name, e.email FROM assignments a JOIN employees e"
                     " ON e.id = a.employee_id WHERE a.id = ?", (assignment_id,)).fetchone()
    how = "reported done" if reported_done else "confirmed"
    note(tx, number, f"Sequence {code}, step {step['number']} ({step['action']}) {how} by"
          f" {who['name'] or who['email']}.",
          {"sequence": code, "sequence_step": step["number"], "sequence_event": "done"},
          now=now)
    following = tx.execute("SELECT id, number, action FROM sequence_run_steps"
                           " WHERE run_id = ? AND number = ?",
                           (step["run_id"], step["number"] + 1)).fetchone()
    if following is None:
        tx.execute("UPDATE sequence_runs SET state = ?, finished_at = ? WHERE id = ?"
                   " AND state = ?", (RunState.DONE, iso(now), step["run_id"], RunState.RUNNING))
        note(tx, number, f"Sequence {code} finished: every step is done.",
              {"sequence": code, "sequence_event": "finished"}, now=now)
        log.info("sequence.finished", intervention=number, code=code)
        return True
    _schedule(tx, following, step["postpone_days"], number=number, code=code, now=now,
              settings=settings)
    return True


def _schedule(tx: WriteTx, step: DbRow, postpone_days: int, *, number: int, code: str,
              now: datetime, settings: Settings) -> None:
    """Schedule `step` `postpone_days` business days after today: mailed at once for 0,
    else at the start of that working day."""
    calendar = BusinessCalendar.from_settings(settings.calendar)
    due_on = add_business_days(local_date(now, settings.calendar.timezone), postpone_days,
                               calendar)
    mail_at = now if not postpone_days else max(now, working_day_start(due_on, calendar))
    tx.execute("UPDATE sequence_run_steps SET status = ?, due_on = ?, mail_at = ?"
               " WHERE id = ? AND status = ?",
               (StepStatus.SCHEDULED, due_on.isoformat(), iso(mail_at), step["id"],
                StepStatus.PLANNED))
    if postpone_days:
        note(tx, number, f"Sequence {code}, step {step['number']} ({step['action']}) is due"
              f" on {due_on.isoformat()}.",
              {"sequence": code, "sequence_step": step["number"],
               "sequence_event": "scheduled"}, now=now)
    log.info("sequence.step_scheduled", intervention=number, code=code,
             step=step["number"], due_on=due_on.isoformat(), mail_at=iso(mail_at))


def schedule_again(tx: WriteTx, number: int, *, by: str, now: datetime) -> int:
    """The current step of the sequence on `number` is due again now: one that could not
    be mailed (blocked) or that its employee, or every member of its team, rejected. Its
    id; the caller mails it."""
    step = tx.execute(
        "SELECT s.id, s.number, s.action, s.status, s.assignment_id, s.team_dispatch_id,"
        " r.code FROM sequence_run_steps s JOIN sequence_runs r ON r.id = s.run_id"
        " WHERE r.intervention_number = ? AND r.state = ? AND s.status NOT IN (?, ?)"
        " ORDER BY s.number LIMIT 1",
        (number, RunState.RUNNING, StepStatus.DONE, StepStatus.CANCELLED)).fetchone()
    if step is None:
        raise NotFound(msg("intervention {number} has no sequence running", number=number))
    if not (step["status"] == StepStatus.BLOCKED or _rejected(tx, step)):
        raise Conflict(msg("step {number} is {status}: only a blocked or rejected step is"
                           " mailed again", number=step["number"],
                           status=Word(step["status"])))
    again = tx.execute(
        "UPDATE sequence_run_steps SET status = ?, mail_at = ?, problem = '',"
        " assignment_id = NULL, team_dispatch_id = NULL WHERE id = ? AND status = ?",
        (StepStatus.SCHEDULED, iso(now), step["id"], step["status"])).rowcount
    if again != 1:
        raise Conflict(msg("step {number} changed meanwhile", number=step["number"]))
    note(tx, number, f"Sequence {step['code']}, step {step['number']} ({step['action']}) to"
         f" be mailed again, by {by}.", {"sequence": step["code"],
                                         "sequence_step": step["number"],
                                         "sequence_event": "again"}, now=now)
    log.info("sequence.step_again", intervention=number, code=step["code"],
             step=step["number"], by=by)
    return int(step["id"])


def _rejected(tx: WriteTx, step: DbRow) -> bool:
    """An assigned step whose employee, or every member of whose team, said no."""
    if step["status"] != StepStatus.ASSIGNED:
        return False
    statuses = [row[0] for row in tx.execute(
        "SELECT status FROM assignments WHERE id = ? OR (team_dispatch_id IS NOT NULL"
        " AND team_dispatch_id = ?)",
        (step["assignment_id"], step["team_dispatch_id"])).fetchall()]
    return bool(statuses) and all(s == AssignmentStatus.REJECTED for s in statuses)


def sequence_running(tx: WriteTx, number: int) -> bool:
    """Whether a sequence still has steps to go on this intervention (which then is not
    resolved by a step's done report)."""
    return tx.execute("SELECT 1 FROM sequence_runs WHERE intervention_number = ?"
                      " AND state = ?", (number, RunState.RUNNING)).fetchone() is not None


def note(tx: WriteTx, number: int, text: str, extra: MessageExtra, *,
         now: datetime) -> None:
    """A line about the sequence on the intervention's thread."""
    add_message(tx, number, NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=AUTHOR, body_text=text,
        extra=extra), now=now)
