"""Which interventions are overdue or due today: the SQL of the `due` list filter.

Only open interventions count. The response deadline counts until a technician has
confirmed (or reported the job done); the resolution deadline until the case is
resolved. "Today" is the company's calendar day (its time zone): a deadline that falls
in it, passed or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from nexusmail.clock import iso
from nexusmail.tickets.models import AssignmentStatus, Status


class Due(StrEnum):
    OVERDUE = "overdue"
    TODAY = "today"


@dataclass(frozen=True)
class DueFilter:
    due: Due
    start: datetime      # the window [start, end) a deadline must fall in
    end: datetime


def due_filter(due: Due, now: datetime, timezone: str) -> DueFilter:
    """The window for `due` at `now`: overdue is everything before now."""
    if due is Due.OVERDUE:
        return DueFilter(due, datetime.min.replace(tzinfo=now.tzinfo), now)
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return DueFilter(due, start, end)


# Fixed SQL; the statuses come from our own enums, every value is a bound parameter.
_NOT_RESPONDED = (
    "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.intervention_number = i.number"  # noqa: S608
    f" AND a.status IN ('{AssignmentStatus.CONFIRMED}', '{AssignmentStatus.DONE}'))")
_CLAUSE = (
    f"(i.status = '{Status.OPEN}' AND ((i.resolution_due >= ? AND i.resolution_due < ?)"
    f" OR (i.response_due >= ? AND i.response_due < ? AND {_NOT_RESPONDED})))")


def due_clause(window: DueFilter) -> tuple[str, list[Any]]:
    """A WHERE fragment over `interventions i` and its parameters."""
    # Stored deadlines are UTC ISO text of one width, so text order is time order.
    start = "" if window.due is Due.OVERDUE else iso(window.start)
    end = iso(window.end)
    return _CLAUSE, [start, end, start, end]
