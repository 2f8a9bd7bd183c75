"""SLA deadlines, planning (runs in `Store.write`): an intervention's response and
resolution deadlines, and the instants of a pending assignment's reminder and
escalation, as sla_steps rows.

An intervention's deadlines are its request instant plus the hours of the contract
covering it, else of its request type, else the `[sla]` defaults (each of the two
deadlines on its own: a contract that sets only a response time leaves the
resolution time to the type or the defaults), counted in business hours; a pending
assignment's reminder and escalation come `[sla] remind_after_hours` /
`escalate_after_hours` business hours after it was made. Planned when the case or the
assignment is made (a case opened by mail or by an operator: worked out before its row
is written, and written with it, `plan_case_to_open`), and by the deadline sweep for any
row left unplanned (sla_planned_at NULL: made elsewhere, or re-timed by a contract
entered later).
Planning again is harmless: a step not yet taken moves, one taken stays.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.storage.connections import DbRow, WriteTx
from nexusmail.tickets.cases import CasePlan
from nexusmail.tickets.contracts import covering_contract
from nexusmail.tickets.models import AssignmentStatus, Status
from nexusmail.tickets.recurrence import local_date
from nexusmail.tickets.sla_calendar import AddBusinessHours, adder_of, company_zone

log = structlog.get_logger(__name__)

REMIND, ESCALATE, RESOLUTION_WARNING = "remind", "escalate", "resolution_warning"


def plan_case_to_open(tx: WriteTx, customer_id: int, *, requested_at: str | None,
                      request_type: str, now: datetime, new_customer: bool,
                      settings: Settings, equipment_id: int | None = None
                      ) -> CasePlan | None:
    """What `plan_intervention` would write for a case about to be made now for
    `customer_id`, so the case's INSERT carries it (no read back, no second write of
    the row). A customer made in this same transaction has no contract to look up.
    None when the calendar cannot place a deadline: the case is made unplanned, for
    the sweep to try again, and never fails for it."""
    start = _instant(requested_at) or datetime.fromisoformat(iso(now))
    contract = None if new_customer else covering_contract(
        tx, customer_id, local_date(start, company_zone(settings)), equipment_id)
    response, resolution = _sla_hours(tx, contract, request_type, settings)
    try:
        add = adder_of(settings) if response or resolution else None
        response_due = add(start, response) if add and response else None
        resolution_due = add(start, resolution) if add and resolution else None
    except ValueError as exc:
        log.error("sla.plan_failed", what="new intervention", customer_id=customer_id,
                  error=str(exc))
        return None
    return CasePlan(contract["id"] if contract else None, _text(response_due),
                    _text(resolution_due))


def plan_opened_case(tx: WriteTx, number: int, plan: CasePlan, *,
                     settings: Settings) -> None:
    """The step a case opened with `plan` needs beside its row: the warning before its
    resolution deadline (a new case is open)."""
    warn = settings.sla.warn_before_hours
    if plan.resolution_due is not None and warn > 0:
        _plan_step(tx, number, 0, RESOLUTION_WARNING,
                   datetime.fromisoformat(plan.resolution_due) - timedelta(hours=warn))


def plan_new_intervention(tx: WriteTx, number: int, *, now: datetime,
                          settings: Settings) -> None:
    """Plan a case just made (its deadlines show at once in its JSON). A deadline the
    calendar cannot place never costs the case itself: it stays unplanned, logged, for
    the sweep to try again."""
    try:
        plan_intervention(tx, number, now=now, settings=settings, add=adder_of(settings))
    except ValueError as exc:  # raised by the calendar before anything is written
        log.error("sla.plan_failed", what="intervention", id=number, error=str(exc))


def plan_new_assignment(tx: WriteTx, assignment_id: int, *, now: datetime,
                        settings: Settings) -> None:
    """Plan an assignment just made (as plan_new_intervention, never failing it)."""
    try:
        plan_assignment(tx, assignment_id, now=now, settings=settings,
                        add=adder_of(settings))
    except ValueError as exc:
        log.error("sla.plan_failed", what="assignment", id=assignment_id, error=str(exc))


def plan_intervention(tx: WriteTx, number: int, *, now: datetime, settings: Settings,
                      add: AddBusinessHours) -> None:
    """Work out an intervention's contract and deadlines, and plan its warning step."""
    row = tx.execute(
        "SELECT customer_id, created_at, requested_at, status, request_type, equipment_id"
        " FROM interventions WHERE number = ?", (number,)).fetchone()
    if row is None:
        return
    start = _instant(row["requested_at"]) or datetime.fromisoformat(row["created_at"])
    contract = covering_contract(tx, row["customer_id"],
                                 local_date(start, company_zone(settings)),
                                 row["equipment_id"])
    response, resolution = _sla_hours(tx, contract, row["request_type"] or "", settings)
    response_due = add(start, response) if response else None
    resolution_due = add(start, resolution) if resolution else None
    tx.execute(
        "UPDATE interventions SET contract_id = ?, response_due = ?, resolution_due = ?,"
        " sla_planned_at = ? WHERE number = ?",
        (contract["id"] if contract else None, _text(response_due), _text(resolution_due),
         iso(now), number))
    warn = settings.sla.warn_before_hours
    if resolution_due is not None and warn > 0 and row["status"] == Status.OPEN:
        _plan_step(tx, number, 0, RESOLUTION_WARNING, resolution_due - timedelta(hours=warn))


def plan_assignment(tx: WriteTx, assignment_id: int, *, now: datetime, settings: Settings,
                    add: AddBusinessHours) -> None:
    """Plan a new assignment's reminder and escalation (when configured)."""
    row = tx.execute("SELECT intervention_number, status, created_at FROM assignments"
                     " WHERE id = ?", (assignment_id,)).fetchone()
    if row is None:
        return
    created = datetime.fromisoformat(row["created_at"])
    if row["status"] == AssignmentStatus.PENDING:
        for step, hours in ((REMIND, settings.sla.remind_after_hours),
                            (ESCALATE, settings.sla.escalate_after_hours)):
            if hours > 0:
                _plan_step(tx, row["intervention_number"], assignment_id, step,
                           add(created, hours))
    tx.execute("UPDATE assignments SET sla_planned_at = ? WHERE id = ?",
               (iso(now), assignment_id))


def _plan_step(tx: WriteTx, number: int, assignment_id: int, step: str,
               due_at: datetime) -> None:
    # Planned again (a contract added later moves the deadline): a step not yet taken
    # moves with it; one already taken stays as it was.
    tx.execute(
        "INSERT INTO sla_steps (intervention_number, assignment_id, step, due_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (intervention_number, assignment_id, step)"
        " DO UPDATE SET due_at = excluded.due_at WHERE sla_steps.done_at IS NULL",
        (number, assignment_id, step, iso(due_at)))


def _sla_hours(tx: WriteTx, contract: DbRow | None, request_type: str,
               settings: Settings) -> tuple[float, float]:
    """The response and resolution hours of a case: the contract's, else its request
    type's, else the `[sla]` defaults; 0 means no deadline."""
    kind = tx.execute("SELECT response_hours, resolution_hours FROM request_types"
                      " WHERE code = ?", (request_type,)).fetchone() if request_type else None
    return (_hours((contract, kind), "response_hours", settings.sla.response_hours),
            _hours((contract, kind), "resolution_hours", settings.sla.resolution_hours))


def _hours(sources: tuple[DbRow | None, ...], column: str, default: float) -> float:
    # A NULL leaves the choice to the next source; a 0 is a choice (no deadline).
    for source in sources:
        if source is not None and source[column] is not None:
            return float(source[column])
    return default


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a bare date or local time says too little to count hours from
    return moment


def _text(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None
