"""Service schedules, the write side: create, edit, pause/resume, open due occurrences.

Plain functions over the writer's connection (they run inside `Store.write`), like
tickets.cases. Dates come from tickets.recurrence; the caller passes `today` (the
company's calendar date) and `now` (the instant stored in timestamps).

Exactly once: an occurrence is claimed by inserting its schedule_occurrences row
(UNIQUE schedule_id, occurrence_on) before its intervention is created, in the same
transaction, after re-reading the schedule's position under the write lock. A second
tick, or a second daemon on the same database, finds the position advanced or the row
taken and creates nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.i18n import message_of, msg
from nexusmail.storage.connections import DbRow, WriteTx, dialect_of
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import (
    Conflict,
    NewIntervention,
    NewMessage,
    NotFound,
    add_message,
    add_participants,
    create_intervention,
    find_or_create_customer,
)
from nexusmail.tickets.message_extra import MessageExtra
from nexusmail.tickets.models import Direction, MessageKind, Source
from nexusmail.tickets.recurrence import (
    CatchUp,
    DayRule,
    Interval,
    Opening,
    Recurrence,
    next_occurrence,
    next_opening_on,
    opening_date,
    plan_due,
)
from nexusmail.tickets.sequence_plan import start_by_trigger
from nexusmail.tickets.sla_plan import plan_new_intervention

log = structlog.get_logger(__name__)

# The seeded request type's code (its names, per language, are in request_types).
DEFAULT_REQUEST_TYPE = "service_schedule"
OPENED, SKIPPED = "opened", "skipped"
# Fields whose change moves the dates; editing only these recomputes the position.
RULE_FIELDS = frozenset({"interval", "every", "day_rule", "first_date", "until", "count",
                         "lead_days"})
EDITABLE = RULE_FIELDS | {"subject", "description", "request_type", "contract_ref",
                          "assignees", "active"}


class InvalidSchedule(ValueError):
    """A schedule that cannot be used; the message starts with the field at fault."""


@dataclass(frozen=True)
class ScheduleSpec:
    customer_email: str
    subject: str
    interval: Interval
    first_date: date
    lead_days: int = 0
    every: int = 1
    until: date | None = None
    count: int | None = None
    day_rule: DayRule = DayRule.SAME_DAY
    description: str = ""
    customer_name: str = ""
    request_type: str = DEFAULT_REQUEST_TYPE
    contract_ref: str = ""
    assignees: tuple[str, ...] = ()
    active: bool = True

    def recurrence(self) -> Recurrence:
        """The date rule (ValueError naming the field when it cannot be used)."""
        return Recurrence(self.interval, self.first_date, every=self.every,
                          until=self.until, count=self.count, day_rule=self.day_rule)


@dataclass(frozen=True)
class Opened:
    schedule_id: int
    intervention_number: int
    occurrence: date
    opens_on: date
    late: bool
    mails_queued: int


@dataclass(frozen=True)
class DueResult:
    """What opening one schedule's due occurrences did."""

    opened: tuple[Opened, ...] = ()
    skipped: tuple[date, ...] = ()
    unassigned: tuple[str, ...] = ()   # assignees that could not be assigned


def create_schedule(tx: WriteTx, spec: ScheduleSpec, *, today: date,
                    now: datetime) -> int:
    """Store a schedule; its first opening is the first occurrence from today on."""
    rule = _checked_rule(spec)
    _check_assignees(tx, spec.assignees)
    customer = find_or_create_customer(tx, email=spec.customer_email,
                                       name=spec.customer_name, now=now)
    upcoming = next_occurrence(rule, today)
    schedule_id: int = tx.execute(
        "INSERT INTO schedules (customer_id, contact_id, contract_ref, subject, description,"
        " request_type, interval, every, day_rule, first_date, until_date, count, lead_days,"
        " assignees, active, next_occurrence_on, next_opening_on, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (customer.customer_id, customer.contact_id, spec.contract_ref, spec.subject,
         spec.description, spec.request_type or DEFAULT_REQUEST_TYPE, spec.interval,
         spec.every, spec.day_rule, spec.first_date.isoformat(), _text(spec.until),
         spec.count, spec.lead_days, json.dumps(list(spec.assignees)), int(spec.active),
         _text(upcoming), _text(next_opening_on(upcoming, spec.lead_days)), iso(now),
         iso(now)),
    ).fetchone()[0]
    log.info("schedule.created", schedule_id=schedule_id, customer=spec.customer_email,
             interval=spec.interval, every=spec.every, first_date=spec.first_date.isoformat(),
             lead_days=spec.lead_days, next_occurrence=_text(upcoming))
    return schedule_id


def update_schedule(tx: WriteTx, schedule_id: int, changes: Mapping[str, Any], *,
                    today: date, now: datetime) -> None:
    """Edit, pause or resume. A change of the rule, or a resume, restarts the position
    from today (never before an occurrence already handled, so nothing opens twice and
    a pause's occurrences are not caught up); other edits keep it."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise InvalidSchedule(msg("{field}: cannot be changed", field=sorted(unknown)[0]))
    row = load_schedule_row(tx, schedule_id)
    spec = replace(spec_from_row(row), **changes)
    rule = _checked_rule(spec)
    if "assignees" in changes:
        _check_assignees(tx, spec.assignees)
    resumed = spec.active and not row["active"]
    position = (row["next_occurrence_on"], row["next_opening_on"])
    if resumed or RULE_FIELDS & set(changes):
        last = tx.execute("SELECT max(occurrence_on) FROM schedule_occurrences"
                          " WHERE schedule_id = ?", (schedule_id,)).fetchone()[0]
        start = max(today, date.fromisoformat(last) + timedelta(days=1)) if last else today
        upcoming = next_occurrence(rule, start)
        position = (_text(upcoming), _text(next_opening_on(upcoming, spec.lead_days)))
    tx.execute(
        "UPDATE schedules SET contract_ref = ?, subject = ?, description = ?, request_type = ?,"
        " interval = ?, every = ?, day_rule = ?, first_date = ?, until_date = ?, count = ?,"
        " lead_days = ?, assignees = ?, active = ?, next_occurrence_on = ?,"
        " next_opening_on = ?, updated_at = ? WHERE id = ?",
        (spec.contract_ref, spec.subject, spec.description,
         spec.request_type or DEFAULT_REQUEST_TYPE, spec.interval, spec.every, spec.day_rule,
         spec.first_date.isoformat(), _text(spec.until), spec.count, spec.lead_days,
         json.dumps(list(spec.assignees)), int(spec.active), *position, iso(now),
         schedule_id),
    )
    log.info("schedule.updated", schedule_id=schedule_id, fields=sorted(changes),
             active=spec.active, next_occurrence=position[0])


def open_due(tx: WriteTx, schedule_id: int, *, today: date, now: datetime,
             settings: Settings, reply_keys: Sequence[bytes],
             catch_up: CatchUp) -> DueResult:
    """Open (and assign) every occurrence of one schedule that is due today; record the
    ones the catch-up policy leaves out; advance the schedule. Nothing when another
    tick got there first."""
    # Several daemons tick the same schedules: on PostgreSQL the one that gets the row
    # locks it while opening, and the others pass it by instead of queueing behind it
    # (once the opener commits, the schedule is no longer due). UNIQUE(schedule,
    # occurrence) in _claim stays the safety net.
    skip_locked = " FOR UPDATE SKIP LOCKED" if dialect_of(tx) == "postgresql" else ""
    row = tx.execute(
        "SELECT * FROM schedules WHERE id = ? AND active = 1"  # noqa: S608 (constant)
        f" AND next_opening_on <= ?{skip_locked}",
        (schedule_id, today.isoformat()),
    ).fetchone()
    if row is None:
        return DueResult()
    spec = spec_from_row(row)
    plan = plan_due(spec.recurrence(), spec.lead_days,
                    from_date=date.fromisoformat(row["next_occurrence_on"]), today=today,
                    catch_up=catch_up)
    for skipped in plan.skipped:
        _claim(tx, schedule_id, Opening(skipped, opening_date(skipped, spec.lead_days), False),
               SKIPPED, now)
    opened, unassigned = [], []
    for opening in plan.to_open:
        if not _claim(tx, schedule_id, opening, OPENED, now):
            continue  # handled before (e.g. an edit moved the position back over it)
        number, mails, failed = _open_occurrence(tx, row, spec, opening, now=now,
                                                 settings=settings, reply_keys=reply_keys)
        tx.execute("UPDATE schedule_occurrences SET intervention_number = ?"
                   " WHERE schedule_id = ? AND occurrence_on = ?",
                   (number, schedule_id, opening.occurrence.isoformat()))
        opened.append(Opened(schedule_id, number, opening.occurrence, opening.opens_on,
                             opening.late, mails))
        unassigned += failed
    tx.execute("UPDATE schedules SET next_occurrence_on = ?, next_opening_on = ? WHERE id = ?",
               (_text(plan.next_occurrence),
                _text(next_opening_on(plan.next_occurrence, spec.lead_days)), schedule_id))
    return DueResult(tuple(opened), plan.skipped, tuple(unassigned))


def _claim(tx: WriteTx, schedule_id: int, opening: Opening, outcome: str,
           now: datetime) -> bool:
    """Take the occurrence's unique row; False when it was handled already."""
    cursor = tx.execute(
        "INSERT INTO schedule_occurrences (schedule_id, occurrence_on, opens_on,"
        " outcome, late, handled_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (schedule_id, opening.occurrence.isoformat(), opening.opens_on.isoformat(), outcome,
         int(opening.late), iso(now)),
    )
    return cursor.rowcount == 1


def occurrence_line(schedule_id: int, opening: Opening, contract_ref: str) -> str:
    """The line that says which occurrence an intervention is for."""
    contract = f", contract {contract_ref}" if contract_ref else ""
    late = (f" Opened late: it was due to open on {opening.opens_on.isoformat()}."
            if opening.late else "")
    return (f"Service schedule {schedule_id}{contract}: occurrence of "
            f"{opening.occurrence.isoformat()}.{late}")


def listed_type_code(tx: WriteTx, value: str) -> str:
    """The code of the listed request type `value` names (by its code or by its name in
    any language, case aside), else `value` as written. A schedule saved before the list
    existed says "Service schedule": its cases still get the code."""
    row = tx.execute(
        "SELECT code FROM request_types WHERE lower(code) = lower(?) OR lower(name_en) ="
        " lower(?) OR lower(name_it) = lower(?) OR lower(name_ro) = lower(?)"
        " ORDER BY position, code LIMIT 1", (value,) * 4).fetchone()
    return str(row[0]) if row else value


def _open_occurrence(tx: WriteTx, row: DbRow, spec: ScheduleSpec,
                     opening: Opening, *, now: datetime, settings: Settings,
                     reply_keys: Sequence[bytes]) -> tuple[int, int, list[str]]:
    # No acknowledgement to the customer: they did not write, and a mail per contract
    # date would be unwanted; the technician's assignment mail is the notification.
    line = occurrence_line(row["id"], opening, spec.contract_ref)
    description = f"{spec.description}\n\n{line}" if spec.description else line
    request_type = listed_type_code(tx, spec.request_type)
    number = create_intervention(tx, NewIntervention(
        customer_id=row["customer_id"], contact_id=row["contact_id"],
        subject=f"{spec.subject} ({opening.occurrence.isoformat()})",
        description=description, source=Source.SCHEDULE, request_type=request_type,
        desired_from=opening.occurrence, desired_to=opening.occurrence,
    ), now=now)
    add_participants(tx, number, [spec.customer_email])
    plan_new_intervention(tx, number, now=now, settings=settings)
    extra: MessageExtra = {"entry": "schedule", "schedule_id": row["id"],
             "occurrence": opening.occurrence.isoformat(),
             "opens_on": opening.opens_on.isoformat(), "late": opening.late}
    add_message(tx, number, NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=f"schedule:{row['id']}",
        subject=spec.subject, body_text=description, extra=extra,
    ), now=now)
    start_by_trigger(tx, number, request_type, now=now, settings=settings)
    mails, failed = 0, []
    for email in spec.assignees:
        problem = "" if reply_keys else "no reply signing key is loaded"
        if not problem:
            try:
                assign(tx, number, email, now=now, settings=settings, reply_keys=reply_keys,
                       assigned_by=f"schedule:{row['id']}")
                mails += 1
                continue
            except (NotFound, Conflict) as exc:
                problem = str(exc)
        # The case still opens: an operator assigns someone else (needs_attention shows
        # it unassigned); the note says why.
        failed.append(email)
        log.warning("schedule.assignee_failed", schedule_id=row["id"], intervention=number,
                    employee=email, why=problem)
        add_message(tx, number, NewMessage(
            kind=MessageKind.NOTE, direction=Direction.INTERNAL,
            author=f"schedule:{row['id']}", body_text=f"Could not assign {email}: {problem}",
            extra={"entry": "schedule", "assignee_failed": email},
        ), now=now)
    return number, mails, failed


def load_schedule_row(tx: WriteTx, schedule_id: int) -> DbRow:
    row: DbRow | None = tx.execute(
        "SELECT s.*, coalesce(ct.email, c.email) AS customer_email, c.name AS customer_name"
        " FROM schedules s JOIN customers c ON c.id = s.customer_id"
        " LEFT JOIN contacts ct ON ct.id = s.contact_id WHERE s.id = ?",
        (schedule_id,),
    ).fetchone()
    if row is None:
        raise NotFound(msg("schedule {id} does not exist", id=schedule_id))
    return row


def spec_from_row(row: DbRow) -> ScheduleSpec:
    keys = row.keys()
    return ScheduleSpec(
        customer_email=row["customer_email"] if "customer_email" in keys else "",
        customer_name=row["customer_name"] if "customer_name" in keys else "",
        subject=row["subject"], description=row["description"],
        interval=Interval(row["interval"]), every=row["every"],
        day_rule=DayRule(row["day_rule"]), first_date=date.fromisoformat(row["first_date"]),
        until=date.fromisoformat(row["until_date"]) if row["until_date"] else None,
        count=row["count"], lead_days=row["lead_days"],
        assignees=tuple(json.loads(row["assignees"])), request_type=row["request_type"],
        contract_ref=row["contract_ref"], active=bool(row["active"]),
    )


def _checked_rule(spec: ScheduleSpec) -> Recurrence:
    if spec.lead_days < 0:
        raise InvalidSchedule(msg("lead_days: should be 0 or more"))
    try:
        return spec.recurrence()
    except ValueError as exc:
        raise InvalidSchedule(message_of(exc)) from None


def _check_assignees(tx: WriteTx, assignees: Sequence[str]) -> None:
    for email in assignees:
        row = tx.execute("SELECT active FROM employees WHERE email = ?",
                         (email.lower(),)).fetchone()
        if row is None:
            raise InvalidSchedule(msg("assignees: no employee with address {email}",
                                      email=email))
        if not row["active"]:
            raise InvalidSchedule(msg("assignees: employee {email} is not active",
                                      email=email))


def _text(value: date | None) -> str | None:
    return value.isoformat() if value else None
