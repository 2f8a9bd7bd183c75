"""Activities: time spent on an intervention, written in the caller's transaction.

A technician's work report by mail becomes an activity of kind `work` whose thread
entry is the reply itself (its files, the signed report PDF or photos, are that
message's attachments). A later report of the same assignment replaces the earlier:
the earlier row stays, marked superseded_by the new one, so the thread keeps both and
timesheets count the latest. Operators add calls, visits, remote sessions, workshop
and travel time by hand; each becomes an `activity` entry on the thread too.

Times are whole minutes: exact (20 minutes is a third of an hour) and summed without
rounding; hours are minutes / 60 where they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import Conflict, NewMessage, NotFound, add_message, intervention_status
from nexusmail.tickets.models import Direction, MessageKind, Status

# One activity of more than a day's work is a typing mistake ("80" for "8.0").
MAX_ACTIVITY_MINUTES = 24 * 60
MAX_ACTIVITY_TEXT = 10_000


class ActivityKind(StrEnum):
    WORK = "work"            # on the job (what a technician's report records)
    PHONE = "phone"          # a phone call with the customer
    VISIT = "visit"
    REMOTE = "remote"        # a remote session
    WORKSHOP = "workshop"    # work at the firm's own bench
    TRAVEL = "travel"        # driving there and back, on its own


@dataclass(frozen=True)
class ReportActivity:
    """A work report read from a technician's reply (tickets.reports)."""

    number: int
    assignment_id: int
    employee_email: str
    day: date
    work_minutes: int | None
    travel_minutes: int | None
    text: str
    verdict: str             # done | not_done
    message_row: int         # the reply on the thread


def record_report_activity(tx: WriteTx, report: ReportActivity, *, now: datetime) -> int:
    """Store the report's activity; it replaces the assignment's earlier report."""
    activity_id: int = tx.execute(
        "INSERT INTO activities (intervention_number, employee_id, employee_email, kind, day,"
        " work_minutes, travel_minutes, text, message_id, assignment_id, verdict, author,"
        " created_at) SELECT ?, e.id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
        " FROM assignments a JOIN employees e ON e.id = a.employee_id WHERE a.id = ?"
        " RETURNING id",
        (report.number, report.employee_email, ActivityKind.WORK, report.day.isoformat(),
         report.work_minutes, report.travel_minutes, report.text[:MAX_ACTIVITY_TEXT],
         report.message_row, report.assignment_id, report.verdict, report.employee_email,
         iso(now), report.assignment_id),
    ).fetchone()[0]
    tx.execute("UPDATE activities SET superseded_by = ? WHERE assignment_id = ?"
               " AND superseded_by IS NULL AND id <> ?",
               (activity_id, report.assignment_id, activity_id))
    return activity_id


@dataclass(frozen=True)
class NewActivity:
    """An activity an operator records by hand (API or admin page)."""

    employee_email: str
    kind: ActivityKind
    minutes: int
    text: str
    day: date
    author: str              # "operator:EMAIL" or "api:NAME", as the thread shows it


def add_activity(tx: WriteTx, number: int, new: NewActivity, *, now: datetime) -> int:
    """Record `new` on intervention `number` (an `activity` entry on its thread too);
    the activity's id. Travel time is kept apart from work time, as in reports."""
    if intervention_status(tx, number) is Status.CLOSED:
        raise Conflict(msg("intervention {number} is closed", number=number))
    email = new.employee_email.strip().lower()
    employee = tx.execute("SELECT id FROM employees WHERE email = ?", (email,)).fetchone()
    if employee is None:
        raise NotFound(msg("no employee with address {email}", email=new.employee_email))
    if not 0 < new.minutes <= MAX_ACTIVITY_MINUTES:
        raise Conflict(msg("hours must be more than 0 and at most {hours}",
                           hours=MAX_ACTIVITY_MINUTES // 60))
    travel = new.kind is ActivityKind.TRAVEL
    message_row = add_message(tx, number, NewMessage(
        kind=MessageKind.ACTIVITY, direction=Direction.INTERNAL, author=new.author,
        body_text=new.text[:MAX_ACTIVITY_TEXT],
        extra={"activity_kind": new.kind, "employee": email, "work_minutes": None
               if travel else new.minutes, "travel_minutes": new.minutes if travel else None},
    ), now=now)
    activity_id: int = tx.execute(
        "INSERT INTO activities (intervention_number, employee_id, employee_email, kind, day,"
        " work_minutes, travel_minutes, text, message_id, author, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (number, employee["id"], email, new.kind, new.day.isoformat(),
         None if travel else new.minutes, new.minutes if travel else None,
         new.text[:MAX_ACTIVITY_TEXT], message_row, new.author, iso(now)),
    ).fetchone()[0]
    return activity_id


@dataclass(frozen=True)
class ActivityChange:
    """An operator's correction of an activity: the hours a report left unread, or a
    misread. None leaves a field as it is."""

    work_minutes: int | None = None
    travel_minutes: int | None = None
    author: str = ""


def correct_activity(tx: WriteTx, activity_id: int, change: ActivityChange, *,
                     now: datetime) -> int:
    """Set the times of a current activity, with a note on its thread saying who changed
    what; the intervention's number."""
    row = tx.execute("SELECT intervention_number, employee_email, work_minutes,"
                     " travel_minutes, superseded_by FROM activities WHERE id = ?",
                     (activity_id,)).fetchone()
    if row is None:
        raise NotFound(msg("activity {id} does not exist", id=activity_id))
    if row["superseded_by"] is not None:
        raise Conflict(msg("activity {id} was replaced by a later report ({later})",
                           id=activity_id, later=row["superseded_by"]))
    for minutes in (change.work_minutes, change.travel_minutes):
        if minutes is not None and not 0 <= minutes <= MAX_ACTIVITY_MINUTES:
            raise Conflict(msg("hours must be from 0 to {hours}", hours=MAX_ACTIVITY_MINUTES // 60))
    work = row["work_minutes"] if change.work_minutes is None else change.work_minutes
    travel = row["travel_minutes"] if change.travel_minutes is None else change.travel_minutes
    tx.execute("UPDATE activities SET work_minutes = ?, travel_minutes = ? WHERE id = ?",
               (work, travel, activity_id))
    number = int(row["intervention_number"])
    add_message(tx, number, NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=change.author,
        body_text=(f"Time of {row['employee_email']} corrected: work "
                   f"{format_hours(row['work_minutes'], 'en') or '(none)'} -> "
                   f"{format_hours(work, 'en') or '(none)'}, travel "
                   f"{format_hours(row['travel_minutes'], 'en') or '(none)'} -> "
                   f"{format_hours(travel, 'en') or '(none)'}."),
    ), now=now)
    return number


_DECIMAL_MARK = {"en": ".", "it": ",", "ro": ","}


def format_hours(minutes: int | None, language: str) -> str:
    """Time as a technician reads it back: "2.5 h" ("2,5 h" in it/ro), "1 h 20 min",
    "40 min"; "" for None. Quarter hours as decimals, anything else exact."""
    if minutes is None:
        return ""
    if minutes < 60:
        return f"{minutes} min"
    if minutes % 15 == 0:
        text = f"{minutes / 60:.2f}".rstrip("0").rstrip(".")
        return text.replace(".", _DECIMAL_MARK.get(language, ".")) + " h"
    return f"{minutes // 60} h {minutes % 60} min"
