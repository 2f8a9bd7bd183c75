"""Read side of a running action sequence: the plan and where it stands, for the
intervention's JSON (`sequence`) and its thread page."""

from __future__ import annotations

from typing import Any, TypedDict

from nexusmail.storage.connections import ReadTx
from nexusmail.tickets.models import AssignmentStatus, Status
from nexusmail.tickets.sequence_plan import RunState, StepStatus


class RunStepView(TypedDict):
    number: int
    action: str
    # planned | scheduled | assigned | confirmed | rejected | unclear | blocked | done |
    # cancelled: an assigned step shows how its assignee(s) answered.
    status: str
    due: str | None                # the company's day it is due (YYYY-MM-DD), once known
    employee_email: str | None
    team: str | None
    expected_hours: float | None
    notes: str
    postpone_days: int
    needs_report: bool
    problem: str                   # why a blocked step could not be mailed


class SequenceRunView(TypedDict):
    code: str
    description: str
    state: str                     # running | done | stopped
    current_step: int | None       # the first step not done; None when none is left
    started_by: str
    started_at: str
    finished_at: str | None
    steps: list[RunStepView]


async def sequence_of(conn: ReadTx, number: int) -> SequenceRunView | None:
    """The sequence run on intervention `number`, or None."""
    runs = list(await conn.execute_fetchall(
        "SELECT r.id, r.code, r.state, r.started_by, r.started_at, r.finished_at,"
        " s.description, i.status FROM sequence_runs r"
        " JOIN sequences s ON s.id = r.sequence_id"
        " JOIN interventions i ON i.number = r.intervention_number"
        " WHERE r.intervention_number = ?", (number,)))
    if not runs:
        return None
    run = runs[0]
    rows = await conn.execute_fetchall(
        "SELECT s.number, s.action, s.status, s.due_on, s.expected_hours, s.notes,"
        " s.postpone_days, s.needs_report, s.problem, s.assignment_id, s.team_dispatch_id,"
        " e.email, t.name AS team FROM sequence_run_steps s"
        " LEFT JOIN employees e ON e.id = s.employee_id LEFT JOIN teams t ON t.id = s.team_id"
        " WHERE s.run_id = ? ORDER BY s.number", (run["id"],))
    answers = await _answers(conn, number)
    steps: list[RunStepView] = [{
        "number": row["number"], "action": row["action"],
        "status": _shown_status(row, answers), "due": row["due_on"],
        "employee_email": row["email"], "team": row["team"],
        "expected_hours": row["expected_hours"], "notes": row["notes"],
        "postpone_days": row["postpone_days"], "needs_report": bool(row["needs_report"]),
        "problem": row["problem"]} for row in rows]
    current = next((s["number"] for s in steps
                    if s["status"] not in (StepStatus.DONE, StepStatus.CANCELLED)), None)
    # A closed case acts on no reply: its run is stopped (for good once its next step
    # comes due; reopened before that, it runs on).
    state = (RunState.STOPPED if run["state"] == RunState.RUNNING
             and run["status"] == Status.CLOSED else run["state"])
    return {"code": run["code"], "description": run["description"], "state": str(state),
            "current_step": current, "started_by": run["started_by"],
            "started_at": run["started_at"], "finished_at": run["finished_at"],
            "steps": steps}


async def _answers(conn: ReadTx, number: int) -> dict[str, dict[int, list[str]]]:
    """The intervention's assignment statuses, by assignment id and by team dispatch."""
    rows = await conn.execute_fetchall(
        "SELECT id, team_dispatch_id, status FROM assignments WHERE intervention_number = ?",
        (number,))
    by_id: dict[int, list[str]] = {}
    by_dispatch: dict[int, list[str]] = {}
    for row in rows:
        by_id[row["id"]] = [row["status"]]
        if row["team_dispatch_id"] is not None:
            by_dispatch.setdefault(row["team_dispatch_id"], []).append(row["status"])
    return {"assignment": by_id, "dispatch": by_dispatch}


def _shown_status(row: Any, answers: dict[str, dict[int, list[str]]]) -> str:
    if row["status"] != StepStatus.ASSIGNED:
        return str(row["status"])
    if row["team_dispatch_id"] is not None:
        statuses = answers["dispatch"].get(row["team_dispatch_id"], [])
    else:
        statuses = answers["assignment"].get(row["assignment_id"], [])
    if any(s in (AssignmentStatus.CONFIRMED, AssignmentStatus.DONE) for s in statuses):
        return "confirmed"
    if statuses and all(s == AssignmentStatus.REJECTED for s in statuses):
        return "rejected"
    if any(s == AssignmentStatus.UNCLEAR for s in statuses):
        return "unclear"
    return str(StepStatus.ASSIGNED)
