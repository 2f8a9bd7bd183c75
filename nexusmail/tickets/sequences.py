"""Action sequences: a firm's fixed plans of numbered steps (who does what, the hours
expected, notes for them, and how many business days to wait before the next step).

This module keeps the definitions; each step names an employee or a team by address or
name, resolved to ids here so a renamed team or a retyped address cannot break a plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

import structlog

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage.connections import INTEGRITY_ERRORS, ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound

log = structlog.get_logger(__name__)

MAX_STEPS = 50
MAX_CODE_CHARS = 50
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class StepDef:
    action: str
    employee_email: str | None = None
    team: str | None = None
    expected_hours: float | None = None
    notes: str = ""
    postpone_days: int = 0
    # Only a "done" work report finishes the step; False: its confirmation does.
    needs_report: bool = True


@dataclass(frozen=True)
class SequenceDef:
    code: str
    steps: Sequence[StepDef]
    description: str = ""
    notes: str = ""
    trigger_request_type: str | None = None


class StepView(TypedDict):
    number: int
    employee_email: str | None
    team: str | None
    action: str
    expected_hours: float | None
    notes: str
    postpone_days: int
    needs_report: bool


class SequenceView(TypedDict):
    id: int
    code: str
    description: str
    notes: str
    trigger_request_type: str | None
    steps: list[StepView]
    created_at: str


def create_sequence(tx: WriteTx, plan: SequenceDef, *, now: datetime) -> int:
    """A new sequence with its steps numbered from 1; its id."""
    _check_trigger(tx, plan.trigger_request_type)
    who = [_who(tx, step) for step in plan.steps]
    try:
        sequence_id: int = tx.execute(
            "INSERT INTO sequences (code, description, notes, trigger_request_type, created_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (plan.code, plan.description, plan.notes, plan.trigger_request_type, iso(now)),
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("a sequence with code {code!r} exists already",
                           code=plan.code)) from None
    _insert_steps(tx, sequence_id, plan.steps, who)
    log.info("sequence.created", code=plan.code, steps=len(plan.steps))
    return sequence_id


def update_sequence(tx: WriteTx, plan: SequenceDef) -> int:
    """Replace the description, notes, trigger and steps of the sequence `plan.code`;
    its id. Runs already started keep the steps they were started with."""
    row = tx.execute("SELECT id FROM sequences WHERE code = ?", (plan.code,)).fetchone()
    if row is None:
        raise NotFound(msg("no sequence with code {code!r}", code=plan.code))
    _check_trigger(tx, plan.trigger_request_type)
    who = [_who(tx, step) for step in plan.steps]
    sequence_id: int = row["id"]
    tx.execute("UPDATE sequences SET description = ?, notes = ?, trigger_request_type = ?"
               " WHERE id = ?",
               (plan.description, plan.notes, plan.trigger_request_type, sequence_id))
    tx.execute("DELETE FROM sequence_steps WHERE sequence_id = ?", (sequence_id,))
    _insert_steps(tx, sequence_id, plan.steps, who)
    log.info("sequence.updated", code=plan.code, steps=len(plan.steps))
    return sequence_id


def _check_trigger(tx: WriteTx, request_type: str | None) -> None:
    if request_type is not None and tx.execute(
            "SELECT 1 FROM request_types WHERE code = ?", (request_type,)).fetchone() is None:
        raise NotFound(msg("no request type {code!r}", code=request_type))


def _insert_steps(tx: WriteTx, sequence_id: int, steps: Sequence[StepDef],
                  who: list[tuple[int | None, int | None]]) -> None:
    tx.executemany(
        "INSERT INTO sequence_steps (sequence_id, number, employee_id, team_id, action,"
        " expected_hours, notes, postpone_days, needs_report)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(sequence_id, number, employee_id, team_id, step.action, step.expected_hours,
          step.notes, step.postpone_days, int(step.needs_report))
         for number, (step, (employee_id, team_id)) in enumerate(zip(steps, who,
                                                                     strict=True), 1)])


def _who(tx: WriteTx, step: StepDef) -> tuple[int | None, int | None]:
    """(employee id, team id) of the step's assignee; exactly one is set."""
    if step.employee_email is not None:
        row = tx.execute("SELECT id FROM employees WHERE email = ?",
                         (step.employee_email.strip().lower(),)).fetchone()
        if row is None:
            raise NotFound(msg("no employee with address {email}",
                               email=step.employee_email))
        return row["id"], None
    row = tx.execute("SELECT id FROM teams WHERE name = ?", (step.team,)).fetchone()
    if row is None:
        raise NotFound(msg("no team named {name!r}", name=step.team))
    return None, row["id"]


_SEQUENCES_SQL = (
    "SELECT s.id, s.code, s.description, s.notes, s.trigger_request_type, s.created_at,"
    " st.number, st.action, st.expected_hours, st.notes AS step_notes, st.postpone_days,"
    " st.needs_report,"
    " e.email, t.name AS team FROM sequences s"
    " LEFT JOIN sequence_steps st ON st.sequence_id = s.id"
    " LEFT JOIN employees e ON e.id = st.employee_id"
    " LEFT JOIN teams t ON t.id = st.team_id"
)


async def list_sequences(conn: ReadTx, code: str | None = None) -> list[SequenceView]:
    """Every sequence (or the one with `code`), by code, steps in order."""
    rows = await conn.execute_fetchall(
        _SEQUENCES_SQL + " ORDER BY s.code, st.number" if code is None
        else _SEQUENCES_SQL + " WHERE s.code = ? ORDER BY st.number",
        () if code is None else (code,))
    found: dict[int, SequenceView] = {}
    for row in rows:
        plan = found.setdefault(row["id"], {
            "id": row["id"], "code": row["code"], "description": row["description"],
            "notes": row["notes"], "trigger_request_type": row["trigger_request_type"],
            "steps": [], "created_at": row["created_at"]})
        if row["number"] is not None:
            plan["steps"].append({
                "number": row["number"], "employee_email": row["email"], "team": row["team"],
                "action": row["action"], "expected_hours": row["expected_hours"],
                "notes": row["step_notes"], "postpone_days": row["postpone_days"],
                "needs_report": bool(row["needs_report"])})
    return list(found.values())


class SequenceChoice(TypedDict):
    code: str
    description: str


async def sequence_choices(conn: ReadTx) -> list[SequenceChoice]:
    """Every sequence's code and description, by code (to pick one to start)."""
    rows = await conn.execute_fetchall(
        "SELECT code, description FROM sequences ORDER BY code")
    return [{"code": row["code"], "description": row["description"]} for row in rows]
