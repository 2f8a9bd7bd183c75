"""The read side of activities: an intervention's list and the timesheet query.

Only current activities are listed (a report replaced by a later one is on the thread,
not in the list or the totals). Hours are minutes / 60, exact to the minute: 20
minutes is 0.333..., never rounded here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, TypedDict

from nexusmail.storage.connections import ReadTx

# A timesheet of more rows is asked for a month at a time.
MAX_TIMESHEET_ROWS = 100_000


class ActivityAttachment(TypedDict):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class ActivityView(TypedDict):
    id: int
    intervention_number: int
    employee_email: str
    kind: str
    date: str
    hours: float | None
    travel_hours: float | None
    text: str
    verdict: str | None
    message_id: int | None
    created_at: str
    attachments: list[ActivityAttachment]


class TimesheetRow(ActivityView):
    customer_id: int
    customer_name: str
    subject: str


_COLUMNS = (
    "a.id, a.intervention_number, a.employee_email, a.kind, a.day, a.work_minutes,"
    " a.travel_minutes, a.text, a.verdict, a.message_id, a.created_at"
)
_MESSAGE_ID = 9  # its position in _COLUMNS


async def activities_of(
    conn: ReadTx, number: int,
    files_of_messages: dict[int, list[ActivityAttachment]] | None = None,
) -> list[ActivityView]:
    """An intervention's current activities, oldest first, with their files (taken from
    `files_of_messages` when the caller loaded the thread's already: one query less)."""
    rows = list(await conn.execute_fetchall(
        f"SELECT {_COLUMNS} FROM activities a WHERE a.intervention_number = ?"  # noqa: S608
        " AND a.superseded_by IS NULL ORDER BY a.id", (number,)))
    files = files_of_messages
    if files is None:
        files = await _attachments(conn, [row["message_id"] for row in rows
                                          if row["message_id"] is not None])
    return [_view(row, files.get(row["message_id"], [])) for row in rows]


async def activity(conn: ReadTx, activity_id: int) -> ActivityView | None:
    """One activity (current or not) with its files, or None."""
    rows = list(await conn.execute_fetchall(
        f"SELECT {_COLUMNS} FROM activities a WHERE a.id = ?", (activity_id,)))  # noqa: S608
    if not rows:
        return None
    message = rows[0]["message_id"]
    files = await _attachments(conn, [message] if message is not None else [])
    return _view(rows[0], files.get(message, []))


async def timesheet(
    conn: ReadTx,
    *,
    employee: str | None = None,
    customer: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    owner: str | None = None,
) -> list[TimesheetRow]:
    """Current activities matching every filter given, by day then id. `customer` is a
    customer id, an address, or part of the name; `owner`: only work on customers that
    operator owns (an operator limited to their own customers)."""
    where = ["a.superseded_by IS NULL"]
    params: list[Any] = []
    if owner is not None:
        where.append("c.owner = ?")
        params.append(owner.lower())
    if employee:
        where.append("a.employee_email = ?")
        params.append(employee.strip().lower())
    if customer:
        customer = customer.strip()
        if customer.isdigit():
            where.append("c.id = ?")
            params.append(int(customer))
        elif "@" in customer:
            where.append("lower(c.email) = ?")
            params.append(customer.lower())
        else:
            where.append("lower(c.name) LIKE ?")
            params.append("%" + customer.lower().replace("%", "").replace("_", "") + "%")
    if date_from:
        where.append("a.day >= ?")
        params.append(date_from.isoformat())
    if date_to:
        where.append("a.day <= ?")
        params.append(date_to.isoformat())
    # Only fixed fragments are joined into the SQL; every value is a bound parameter.
    rows = list(await conn.execute_fetchall(
        f"SELECT {_COLUMNS}, c.id AS customer_id, c.name AS customer_name, i.subject"  # noqa: S608
        " FROM activities a JOIN interventions i ON i.number = a.intervention_number"
        " JOIN customers c ON c.id = i.customer_id WHERE " + " AND ".join(where)
        + " ORDER BY a.day, a.id LIMIT ?", [*params, MAX_TIMESHEET_ROWS]))
    files = await _attachments(conn, [row[_MESSAGE_ID] for row in rows
                                      if row[_MESSAGE_ID] is not None])
    return [_timesheet_row(row, files) for row in rows]


def _timesheet_row(row: Any, files: dict[int, list[ActivityAttachment]]) -> TimesheetRow:
    # A month of everyone's work is tens of thousands of rows: read by position and built
    # as one dict, which halves the Python time per row against reading each column by
    # name (a scan of the column names per read) into a view copied into a second dict.
    (activity_id, number, employee_email, kind, day, work_minutes, travel_minutes, text,
     verdict, message_id, created_at, customer_id, customer_name, subject) = row
    return {
        "id": activity_id, "intervention_number": number, "employee_email": employee_email,
        "kind": kind, "date": day, "hours": _hours(work_minutes),
        "travel_hours": _hours(travel_minutes), "text": text, "verdict": verdict,
        "message_id": message_id, "created_at": created_at,
        "attachments": files.get(message_id, []), "customer_id": customer_id,
        "customer_name": customer_name, "subject": subject,
    }


async def _attachments(conn: ReadTx, message_ids: list[int]
                       ) -> dict[int, list[ActivityAttachment]]:
    found: dict[int, list[ActivityAttachment]] = defaultdict(list)
    # In chunks: a timesheet may name many messages, and bound parameters are limited.
    for start in range(0, len(message_ids), 500):
        chunk = message_ids[start:start + 500]
        marks = ", ".join("?" for _ in chunk)  # placeholders only: values are bound
        sql = ("SELECT id, message_id, filename, content_type, size, sha256 FROM attachments"  # noqa: S608
               " WHERE message_id IN (" + marks + ") AND inline = 0 ORDER BY id")
        rows = await conn.execute_fetchall(sql, chunk)
        for row in rows:
            found[row["message_id"]].append({
                "id": row["id"], "filename": row["filename"],
                "content_type": row["content_type"], "size": row["size"],
                "sha256": row["sha256"]})
    return found


def _hours(minutes: int | None) -> float | None:
    return None if minutes is None else minutes / 60


def _view(row: Any, attachments: list[ActivityAttachment]) -> ActivityView:
    return {
        "id": row["id"], "intervention_number": row["intervention_number"],
        "employee_email": row["employee_email"], "kind": row["kind"], "date": row["day"],
        "hours": _hours(row["work_minutes"]), "travel_hours": _hours(row["travel_minutes"]),
        "text": row["text"], "verdict": row["verdict"], "message_id": row["message_id"],
        "created_at": row["created_at"], "attachments": attachments,
    }
