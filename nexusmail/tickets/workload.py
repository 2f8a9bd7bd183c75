"""Each technician's load, for the operator choosing whom to assign: open jobs, jobs
whose desired period overlaps the case's, and absences in that period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from nexusmail.storage.connections import ReadTx, dialect_of
from nexusmail.tickets.employees import AbsenceView, absences, overlaps

# Assignments that still hold the technician: asked and not answered, or accepted and
# not yet reported done (pending, confirmed), on a case not finished (open, on hold).

@dataclass(frozen=True)
class Load:
    open_jobs: int = 0
    jobs_in_period: int = 0
    away: list[AbsenceView] = field(default_factory=list)

    @property
    def free(self) -> bool:
        return not self.away


async def loads(conn: ReadTx, employee_ids: Sequence[int], first: date,
                last: date) -> dict[int, Load]:
    """The load of each employee for a job between `first` and `last` (inclusive)."""
    if not employee_ids:
        return {}
    marks = ",".join("?" * len(employee_ids))
    # SQLite is told which indexes to take: with no statistics (a store nobody ran
    # ANALYZE on) it would rather take the status index and read each case's row.
    hints = ((" INDEXED BY interventions_worked_period", " INDEXED BY assignments_holding")
             if dialect_of(conn) == "sqlite" else ("", ""))
    rows = await conn.execute_fetchall(
        "SELECT a.employee_id, count(*),"  # noqa: S608 (fixed fragments and marks only)
        " sum(CASE WHEN coalesce(w.desired_from, w.desired_to) <= ?"
        "  AND coalesce(w.desired_to, w.desired_from) >= ? THEN 1 ELSE 0 END)"
        # One GROUP BY over the assignments that hold someone, reached from the cases
        # still being worked on: both sides come from a partial index holding every
        # column needed (migration 0025), so no table row is read. CROSS JOIN keeps
        # SQLite in that order: from the 200 technicians' side it would visit every
        # assignment ever made (90,000 at 100,000 cases). `+` keeps the ids off the
        # employee index: each case's one or two holding assignments are checked
        # against them, not probed 200 times.
        f" FROM interventions w{hints[0]} CROSS JOIN assignments a{hints[1]}"
        " WHERE w.status IN ('open', 'on_hold') AND a.intervention_number = w.number"
        f" AND a.status IN ('pending', 'confirmed') AND +a.employee_id IN ({marks})"
        " GROUP BY a.employee_id",
        [last.isoformat(), first.isoformat(), *employee_ids],
    )
    counts = {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}
    away = await absences(conn, employee_ids, ending_from=first)
    return {
        employee_id: Load(*counts.get(employee_id, (0, 0)),
                          away=[a for a in away.get(employee_id, []) if overlaps(a, first, last)])
        for employee_id in employee_ids
    }


def period_of(desired_from: str | None, desired_to: str | None, today: date) -> tuple[date, date]:
    """The days a job is wanted on: its desired period, else today."""
    first_text = desired_from or desired_to
    last_text = desired_to or desired_from
    if not first_text or not last_text:
        return today, today
    first, last = date.fromisoformat(first_text), date.fromisoformat(last_text)
    return first, max(first, last)
