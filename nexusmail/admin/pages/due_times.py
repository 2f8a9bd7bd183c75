"""The deadline an operator sees on a case: which one is next, and how far off.

Pure: the case's deadlines, whether a technician has confirmed, and the instant in;
a small value out, which the list and the thread show as "due in 3 h" or
"overdue 2 h" in the operator's language. Only an open case shows one; the response
deadline counts until a technician confirms (as in tickets.due_filter).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from nexusmail.tickets.models import AssignmentStatus, Status

RESPONSE, RESOLUTION = "response", "resolution"
# Under this many minutes the page says minutes: "due in 40 min" rather than "0 h".
MINUTES_SHOWN_UNDER = 60
_ANSWERED = {AssignmentStatus.CONFIRMED, AssignmentStatus.DONE}


@dataclass(frozen=True)
class DueShown:
    what: str            # response | resolution
    overdue: bool
    amount: int          # whole hours, or minutes when `in_minutes`
    in_minutes: bool


def next_deadline(*, status: str, response_due: str | None, resolution_due: str | None,
                  assignment_statuses: Iterable[str], now: datetime) -> DueShown | None:
    """The most urgent deadline still counting, or None."""
    if status != Status.OPEN:
        return None
    counting = []
    if response_due and not _ANSWERED & set(assignment_statuses):
        counting.append((datetime.fromisoformat(response_due), RESPONSE))
    if resolution_due:
        counting.append((datetime.fromisoformat(resolution_due), RESOLUTION))
    if not counting:
        return None
    due, what = min(counting)
    seconds = (due - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    if minutes < MINUTES_SHOWN_UNDER:
        return DueShown(what, seconds < 0, minutes, in_minutes=True)
    return DueShown(what, seconds < 0, minutes // 60, in_minutes=False)
