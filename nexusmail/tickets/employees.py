"""Employees (technicians) as operators manage them: details, retiring, absences.

An absence is a span of whole days (first and last day included) when the employee is
away; the assign form shows it, so nobody is sent to a case while on holiday.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypedDict

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.tickets.cases import NotFound

MAX_ABSENCES = 100
MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class Absence:
    starts_on: date
    ends_on: date
    reason: str = ""

    def __post_init__(self) -> None:
        if self.ends_on < self.starts_on:
            raise ValueError(f"absence ends ({self.ends_on}) before it starts ({self.starts_on})")


class AbsenceView(TypedDict):
    starts_on: str
    ends_on: str
    reason: str


@dataclass(frozen=True)
class EmployeeChange:
    """What to change; None leaves a field as it is (absences: the whole list)."""

    name: str | None = None
    language: str | None = None
    active: bool | None = None
    absences: Sequence[Absence] | None = None


def update_employee(tx: WriteTx, email: str, change: EmployeeChange, *,
                    now: datetime) -> int:
    """Apply `change` to the employee with address `email`; their id. NotFound if none."""
    row = tx.execute("SELECT id FROM employees WHERE email = ?",
                     (email.strip().lower(),)).fetchone()
    if row is None:
        raise NotFound(msg("employee {email} does not exist", email=email))
    employee_id = int(row[0])
    fields = {"name": change.name, "language": change.language,
              "active": None if change.active is None else int(change.active)}
    for column, value in fields.items():
        if value is not None:
            # The column names are the three literals above, never input.
            tx.execute(f"UPDATE employees SET {column} = ? WHERE id = ?",  # noqa: S608
                       (value, employee_id))
    if change.absences is not None:
        tx.execute("DELETE FROM employee_absences WHERE employee_id = ?", (employee_id,))
        tx.executemany(
            "INSERT INTO employee_absences (employee_id, starts_on, ends_on, reason,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            [(employee_id, a.starts_on.isoformat(), a.ends_on.isoformat(),
              a.reason.strip()[:MAX_REASON_CHARS], iso(now))
             for a in sorted(change.absences, key=lambda a: a.starts_on)],
        )
    return employee_id


async def absences(conn: ReadTx, employee_ids: Sequence[int], *,
                   ending_from: date | None = None) -> dict[int, list[AbsenceView]]:
    """Each employee's absences in date order (those ending on or after `ending_from`
    when given: what is still ahead)."""
    if not employee_ids:
        return {}
    marks = ",".join("?" * len(employee_ids))
    params: list[object] = list(employee_ids)
    since = ""
    if ending_from is not None:
        since = " AND ends_on >= ?"
        params.append(ending_from.isoformat())
    rows = await conn.execute_fetchall(
        "SELECT employee_id, starts_on, ends_on, reason FROM employee_absences"  # noqa: S608
        f" WHERE employee_id IN ({marks}){since} ORDER BY employee_id, starts_on",
        params,
    )
    found: dict[int, list[AbsenceView]] = {}
    for r in rows:
        found.setdefault(int(r[0]), []).append(
            {"starts_on": str(r[1]), "ends_on": str(r[2]), "reason": str(r[3])})
    return found


def overlaps(absence: AbsenceView, start: date, end: date) -> bool:
    """The absence covers at least one day of start..end (inclusive)."""
    return absence["starts_on"] <= end.isoformat() and absence["ends_on"] >= start.isoformat()
