"""Service schedules, the read side: what the API and the CLI show, as JSON-ready dicts.

Every function takes a read connection from `Store.read()` and never writes.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, TypedDict

from nexusmail.storage.connections import DbRow, ReadTx
from nexusmail.tickets.recurrence import DayRule, Interval, Recurrence, occurrences, opening_date

# Previews longer than this are a client's loop, not a person reading dates.
MAX_PREVIEW = 500
RECENT_OCCURRENCES = 12


class CustomerView(TypedDict):
    name: str
    email: str


class ScheduleView(TypedDict):
    id: int
    customer: CustomerView
    contract_ref: str
    contract_id: int | None     # the contract that pays for it (set from the contract)
    subject: str
    description: str
    request_type: str
    interval: str               # weekly | monthly | quarterly | yearly
    every: int
    day_rule: str               # same_day | last_day | nth_weekday
    first_date: str
    until: str | None
    count: int | None
    lead_days: int
    assignees: list[str]
    active: bool
    next_occurrence_on: str | None   # None: the rule has ended
    next_opening_on: str | None
    created_at: str
    updated_at: str


class HandledView(TypedDict):
    date: str
    opens_on: str
    outcome: str                # opened | skipped
    intervention_number: int | None
    late: bool
    handled_at: str


class ScheduleDetail(ScheduleView):
    recent: list[HandledView]   # the latest handled occurrences, newest first


class PreviewItem(TypedDict):
    date: str
    opens_on: str
    intervention_number: int | None


_SELECT = (
    "SELECT s.*, coalesce(ct.email, c.email) AS customer_email, c.name AS customer_name"
    " FROM schedules s JOIN customers c ON c.id = s.customer_id"
    " LEFT JOIN contacts ct ON ct.id = s.contact_id"
)


def _view(row: DbRow) -> ScheduleView:
    return {
        "id": row["id"],
        "customer": {"name": row["customer_name"], "email": row["customer_email"] or ""},
        "contract_ref": row["contract_ref"], "contract_id": row["contract_id"],
        "subject": row["subject"],
        "description": row["description"], "request_type": row["request_type"],
        "interval": row["interval"], "every": row["every"], "day_rule": row["day_rule"],
        "first_date": row["first_date"], "until": row["until_date"], "count": row["count"],
        "lead_days": row["lead_days"], "assignees": json.loads(row["assignees"]),
        "active": bool(row["active"]), "next_occurrence_on": row["next_occurrence_on"],
        "next_opening_on": row["next_opening_on"], "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def list_schedules(conn: ReadTx) -> list[ScheduleView]:
    """Every schedule, by id."""
    rows = await conn.execute_fetchall(_SELECT + " ORDER BY s.id")
    return [_view(row) for row in rows]


async def get_schedule(conn: ReadTx, schedule_id: int) -> ScheduleDetail | None:
    rows = list(await conn.execute_fetchall(_SELECT + " WHERE s.id = ?", (schedule_id,)))
    if not rows:
        return None
    handled = await conn.execute_fetchall(
        "SELECT occurrence_on, opens_on, outcome, intervention_number, late, handled_at"
        " FROM schedule_occurrences WHERE schedule_id = ? ORDER BY occurrence_on DESC"
        " LIMIT ?", (schedule_id, RECENT_OCCURRENCES))
    recent: list[HandledView] = [
        {"date": h["occurrence_on"], "opens_on": h["opens_on"], "outcome": h["outcome"],
         "intervention_number": h["intervention_number"], "late": bool(h["late"]),
         "handled_at": h["handled_at"]}
        for h in handled
    ]
    return {**_view(rows[0]), "recent": recent}


async def preview(conn: ReadTx, schedule_id: int, *, today: date,
                  count: int) -> list[PreviewItem] | None:
    """The next `count` occurrence dates from today, with the intervention of those
    already opened (lead days open some ahead); None for an unknown schedule."""
    rows = list(await conn.execute_fetchall(
        "SELECT interval, every, day_rule, first_date, until_date, count, lead_days"
        " FROM schedules WHERE id = ?", (schedule_id,)))
    if not rows:
        return None
    row = rows[0]
    rule = Recurrence(
        Interval(row["interval"]), date.fromisoformat(row["first_date"]), every=row["every"],
        until=date.fromisoformat(row["until_date"]) if row["until_date"] else None,
        count=row["count"], day_rule=DayRule(row["day_rule"]))
    dates = occurrences(rule, on_or_after=today, limit=min(count, MAX_PREVIEW))
    opened: dict[str, Any] = {}
    if dates:
        found = await conn.execute_fetchall(
            "SELECT occurrence_on, intervention_number FROM schedule_occurrences"
            " WHERE schedule_id = ? AND occurrence_on BETWEEN ? AND ?",
            (schedule_id, dates[0].isoformat(), dates[-1].isoformat()))
        opened = {r["occurrence_on"]: r["intervention_number"] for r in found}
    return [
        {"date": d.isoformat(), "opens_on": opening_date(d, row["lead_days"]).isoformat(),
         "intervention_number": opened.get(d.isoformat())}
        for d in dates
    ]
