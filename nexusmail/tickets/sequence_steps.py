"""Mailing a scheduled step of an action sequence (runs in `Store.write`).

A step becomes an assignment, mailed as any other with the step's action, expected
hours and notes: to its employee, or to every active member of its team (the first to
confirm takes the job, tickets.teams). The step is taken by a guarded UPDATE
(scheduled -> assigned) in the transaction that queues its mails, and on PostgreSQL
locked with SKIP LOCKED first, so two sweeps or two daemons mail it once.

An employee holds one assignment per intervention, so an employee who already has one
there (an earlier step, or assigned by hand) gets that assignment armed again for this
step: pending, a fresh mail matched by replies, earlier decisions and answers set aside
(replies written before this mail no longer act), its reminder and escalation counted
again from this mail, and the earlier step's work report kept as it was rather than
corrected by the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.storage.connections import DbRow, WriteTx, dialect_of
from nexusmail.tickets.assignments import assign, queue_assignment_mail
from nexusmail.tickets.models import AssignmentStatus, Status
from nexusmail.tickets.sequence_plan import (
    RunState,
    StepStatus,
    note,
    schedule_again,
    start_sequence,
)
from nexusmail.tickets.sla_calendar import adder_of
from nexusmail.tickets.sla_plan import ESCALATE, REMIND
from nexusmail.tickets.teams import open_dispatch

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StepMailed:
    intervention_number: int
    step: int
    outcome: str          # mailed | blocked | cancelled
    mails: int


def start_and_mail(tx: WriteTx, number: int, code: str, *, started_by: str, now: datetime,
                   settings: Settings, reply_keys: Sequence[bytes]) -> int:
    """An operator starts the sequence `code` on `number`: its step 1 is mailed in the
    same transaction rather than at the next sweep. The run's id."""
    run_id = start_sequence(tx, number, code, started_by=started_by, now=now,
                            settings=settings)
    first = tx.execute("SELECT id FROM sequence_run_steps WHERE run_id = ? AND number = 1",
                       (run_id,)).fetchone()
    if first is not None:
        mail_step(tx, first["id"], now=now, settings=settings, reply_keys=reply_keys)
    return run_id


def mail_again(tx: WriteTx, number: int, *, by: str, now: datetime, settings: Settings,
               reply_keys: Sequence[bytes]) -> int:
    """An operator has the blocked or rejected current step mailed again, now (its
    employee's assignment armed again, or the team's members mailed afresh). Its id."""
    step_id = schedule_again(tx, number, by=by, now=now)
    mail_step(tx, step_id, now=now, settings=settings, reply_keys=reply_keys)
    return step_id


def mail_step(tx: WriteTx, step_id: int, *, now: datetime, settings: Settings,
              reply_keys: Sequence[bytes]) -> StepMailed | None:
    """Take one scheduled step and mail it; None when it was taken already."""
    # Several daemons sweep the same steps: on PostgreSQL the one mailing a step locks
    # it, the others pass it by; the guarded UPDATE below stays the safety net.
    skip_locked = " FOR UPDATE SKIP LOCKED" if dialect_of(tx) == "postgresql" else ""
    step = tx.execute("SELECT * FROM sequence_run_steps WHERE id = ?"  # noqa: S608 (constant)
                      f" AND status = ?{skip_locked}",
                      (step_id, StepStatus.SCHEDULED)).fetchone()
    if step is None:
        return None
    run = tx.execute("SELECT r.id, r.intervention_number, r.code, i.status,"
                     " (SELECT count(*) FROM sequence_run_steps WHERE run_id = r.id) AS steps"
                     " FROM sequence_runs r JOIN interventions i"
                     " ON i.number = r.intervention_number WHERE r.id = ?",
                     (step["run_id"],)).fetchone()
    number, code = run["intervention_number"], run["code"]
    if run["status"] == Status.CLOSED:
        return _cancel(tx, step, run, now=now)
    team = None if step["team_id"] is None else tx.execute(
        "SELECT name FROM teams WHERE id = ?", (step["team_id"],)).fetchone()["name"]
    members = _members(tx, step)
    if not members:
        return _block(tx, step, run, f"team {team} has no active member" if team
                      else "its employee is not active", now=now)
    taken = tx.execute("UPDATE sequence_run_steps SET status = ?, assigned_at = ?"
                       " WHERE id = ? AND status = ?",
                       (StepStatus.ASSIGNED, iso(now), step_id, StepStatus.SCHEDULED)).rowcount
    if taken != 1:
        return None
    context = step_context(step, code=code, steps=run["steps"], team=team)
    by = f"sequence:{code}"
    dispatch_id = None
    if team is not None:
        dispatch_id, _ = open_dispatch(tx, number, team, now=now)
        tx.execute("UPDATE sequence_run_steps SET team_dispatch_id = ? WHERE id = ?",
                   (dispatch_id, step_id))
    ids = [_assign_or_rearm(tx, number, member, dispatch_id=dispatch_id, step=context,
                            now=now, settings=settings, reply_keys=reply_keys, assigned_by=by)
           for member in members]
    if team is None:
        tx.execute("UPDATE sequence_run_steps SET assignment_id = ? WHERE id = ?",
                   (ids[0], step_id))
    names = f"team {team}" if team else members[0]["email"]
    note(tx, number, f"Sequence {code}, step {step['number']} ({step['action']}) mailed to"
         f" {names}.", {"sequence": code, "sequence_step": step["number"],
                        "sequence_event": "mailed"}, now=now)
    log.info("sequence.step_mailed", intervention=number, code=code, step=step["number"],
             team=team, mails=len(ids))
    return StepMailed(number, step["number"], "mailed", len(ids))


def step_context(step: DbRow, *, code: str, steps: int, team: str | None) -> dict[str, Any]:
    """What the assignment mail says about the step (tickets.assignments `step`)."""
    hours = step["expected_hours"]
    return {"code": code, "number": step["number"], "of": steps, "action": step["action"],
            "expected_hours": "" if hours is None else f"{hours:g}",
            "notes": step["notes"], "due_on": step["due_on"] or "", "team": team or "",
            "needs_report": bool(step["needs_report"])}


def _members(tx: WriteTx, step: DbRow) -> list[DbRow]:
    """The active employees the step goes to (its employee, or its team's members)."""
    if step["team_id"] is None:
        return list(tx.execute("SELECT id, email, name, language FROM employees"
                               " WHERE id = ? AND active = 1",
                               (step["employee_id"],)).fetchall())
    return list(tx.execute(
        "SELECT e.id, e.email, e.name, e.language FROM team_members m"
        " JOIN employees e ON e.id = m.employee_id WHERE m.team_id = ? AND e.active = 1"
        " ORDER BY e.email", (step["team_id"],)).fetchall())


def _assign_or_rearm(tx: WriteTx, number: int, employee: DbRow, *, dispatch_id: int | None,
                     step: dict[str, Any], now: datetime, settings: Settings,
                     reply_keys: Sequence[bytes], assigned_by: str) -> int:
    held = tx.execute("SELECT id FROM assignments WHERE intervention_number = ?"
                      " AND employee_id = ?", (number, employee["id"])).fetchone()
    if held is None:
        return assign(tx, number, employee["email"], now=now, settings=settings,
                      reply_keys=reply_keys, assigned_by=assigned_by,
                      team_dispatch_id=dispatch_id, step=step)
    assignment_id = int(held["id"])
    # decided_mail_date = now: a reply written before this step's mail is an old one.
    tx.execute("UPDATE assignments SET status = ?, reason = '', decided_at = NULL,"
               " report = NULL, decided_mail_date = ?, team_dispatch_id = ?,"
               " assigned_by = ? WHERE id = ?",
               (AssignmentStatus.PENDING, iso(now), dispatch_id, assigned_by, assignment_id))
    # The same words ("confermo") answer the new step too: not a replay of the old one.
    tx.execute("DELETE FROM assignment_answers WHERE assignment_id = ?", (assignment_id,))
    # A later report corrects the earlier one of the same assignment: the finished step's
    # report is let go of the assignment so it stays counted as it was.
    tx.execute("UPDATE activities SET assignment_id = NULL WHERE assignment_id = ?",
               (assignment_id,))
    queue_assignment_mail(tx, assignment_id, number, employee, now=now, settings=settings,
                          reply_keys=reply_keys, step=step)
    _chase_again(tx, number, assignment_id, now=now, settings=settings)
    log.info("sequence.assignment_rearmed", intervention=number, assignment_id=assignment_id,
             employee=employee["email"])
    return assignment_id


def _chase_again(tx: WriteTx, number: int, assignment_id: int, *, now: datetime,
                 settings: Settings) -> None:
    """The reminder and escalation of [sla] count again from this step's mail: each is
    carried out once per mail, so one sent for an earlier step is due again."""
    add = adder_of(settings)
    for step, hours in ((REMIND, settings.sla.remind_after_hours),
                        (ESCALATE, settings.sla.escalate_after_hours)):
        if hours > 0:
            tx.execute(
                "INSERT INTO sla_steps (intervention_number, assignment_id, step, due_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (intervention_number, assignment_id, step)"
                " DO UPDATE SET due_at = excluded.due_at, done_at = NULL, outcome = NULL",
                (number, assignment_id, step, iso(add(now, hours))))


def _block(tx: WriteTx, step: DbRow, run: DbRow, problem: str, *,
           now: datetime) -> StepMailed | None:
    """The step cannot be mailed: it waits for an operator, the thread says why."""
    taken = tx.execute("UPDATE sequence_run_steps SET status = ?, problem = ? WHERE id = ?"
                       " AND status = ?", (StepStatus.BLOCKED, problem, step["id"],
                                           StepStatus.SCHEDULED)).rowcount
    if taken != 1:
        return None
    number, code = run["intervention_number"], run["code"]
    note(tx, number, f"Sequence {code}, step {step['number']} ({step['action']}) could not"
         f" be mailed: {problem}.", {"sequence": code, "sequence_step": step["number"],
                                     "sequence_event": "blocked"}, now=now)
    log.warning("sequence.step_blocked", intervention=number, code=code,
                step=step["number"], problem=problem)
    return StepMailed(number, step["number"], "blocked", 0)


def _cancel(tx: WriteTx, step: DbRow, run: DbRow, *, now: datetime) -> StepMailed | None:
    """The intervention was closed: the run stops here."""
    taken = tx.execute("UPDATE sequence_run_steps SET status = ? WHERE id = ? AND status = ?",
                       (StepStatus.CANCELLED, step["id"], StepStatus.SCHEDULED)).rowcount
    if taken != 1:
        return None
    tx.execute("UPDATE sequence_runs SET state = ?, finished_at = ? WHERE id = ?",
               (RunState.STOPPED, iso(now), run["id"]))
    number, code = run["intervention_number"], run["code"]
    note(tx, number, f"Sequence {code} stopped at step {step['number']}: the intervention"
         " is closed.", {"sequence": code, "sequence_step": step["number"],
                         "sequence_event": "stopped"}, now=now)
    log.info("sequence.stopped", intervention=number, code=code, step=step["number"])
    return StepMailed(number, step["number"], "cancelled", 0)
