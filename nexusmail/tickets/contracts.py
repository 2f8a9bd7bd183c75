"""Service contracts: what a customer bought (response and resolution times, prepaid
hours), which contract covers an intervention, and the hours used from a package.

A contract may also name the customer's machines and service schedules it covers
(tickets.contract_links). An intervention is covered by the customer's contract valid
on the day it was requested (the company's calendar day); when two overlap, the one
that lists the case's machine wins, else the one that started last. Prepaid hours are
consumed by the work reports (activities of kind `work`, the latest report of each
assignment) on the interventions the contract covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, TypedDict

import structlog

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage.connections import INTEGRITY_ERRORS, DbRow, ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.contract_links import LINK_FIELDS, links_of, set_links
from nexusmail.tickets.models import Status

log = structlog.get_logger(__name__)

FIELDS = ("code", "type", "valid_from", "valid_to", "response_hours", "resolution_hours",
          "prepaid_hours", "notes")
COLUMNS = ("id, customer_id, code, type, valid_from, valid_to, response_hours,"
           " resolution_hours, prepaid_hours, notes, low_hours_alerted_at, created_at")
MAX_HOURS = 100_000.0
MAX_CODE_CHARS = 100
MAX_NOTES_CHARS = 10_000

# Hours used per contract: the work of the latest (not superseded) report rows.
USED_MINUTES_SQL = (
    "SELECT coalesce(sum(a.work_minutes), 0) FROM activities a"
    " JOIN interventions i ON i.number = a.intervention_number"
    " WHERE i.contract_id = ? AND a.kind = 'work' AND a.superseded_by IS NULL")


class InvalidContract(InvalidRecord):
    """A contract that cannot be stored; the message starts with the field at fault
    (in English for the API, in the operator's language on the pages)."""


class ContractView(TypedDict):
    id: int
    customer_id: int
    code: str
    type: str
    valid_from: str
    valid_to: str | None
    response_hours: float | None
    resolution_hours: float | None
    prepaid_hours: float | None
    notes: str
    used_hours: float
    remaining_hours: float | None
    created_at: str
    equipment_ids: list[int]     # the customer's machines it lists
    schedule_ids: list[int]      # the service schedules it pays for


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """The contract's fields checked and normalised (InvalidContract names the field)."""
    unknown = set(values) - set(FIELDS) - set(LINK_FIELDS)
    if unknown:
        raise InvalidContract(msg("{field}: unknown field", field=sorted(unknown)[0]))
    code = str(values.get("code") or "").strip()
    if not code:
        raise InvalidContract(msg("{field}: is required", field="code"))
    if len(code) > MAX_CODE_CHARS:
        raise InvalidContract(msg("{field}: is longer than {most} characters", field="code",
                                  most=MAX_CODE_CHARS))
    valid_from = _day(values.get("valid_from"), "valid_from")
    if valid_from is None:
        raise InvalidContract(msg("{field}: is required", field="valid_from"))
    valid_to = _day(values.get("valid_to"), "valid_to")
    if valid_to is not None and valid_to < valid_from:
        raise InvalidContract(msg("{field}: is before {other}", field="valid_to",
                                  other="valid_from"))
    notes = str(values.get("notes") or "")
    if len(notes) > MAX_NOTES_CHARS:
        raise InvalidContract(msg("{field}: is longer than {most} characters", field="notes",
                                  most=MAX_NOTES_CHARS))
    return {
        "code": code, "type": str(values.get("type") or "").strip(),
        "valid_from": valid_from.isoformat(),
        "valid_to": valid_to.isoformat() if valid_to else None,
        "response_hours": _hours(values.get("response_hours"), "response_hours"),
        "resolution_hours": _hours(values.get("resolution_hours"), "resolution_hours"),
        "prepaid_hours": _hours(values.get("prepaid_hours"), "prepaid_hours"),
        "notes": notes,
    }


def add_contract(tx: WriteTx, customer_id: int, values: Mapping[str, Any], *,
                 now: datetime) -> int:
    """Store a contract; the customer's open interventions get their deadlines worked
    out again by the next sweep (this contract may now cover them)."""
    if tx.execute("SELECT 1 FROM customers WHERE id = ?", (customer_id,)).fetchone() is None:
        raise NotFound(msg("customer {id} does not exist", id=customer_id))
    data = clean(values)
    try:
        contract_id: int = tx.execute(
            "INSERT INTO contracts (customer_id, code, type, valid_from, valid_to,"
            " response_hours, resolution_hours, prepaid_hours, notes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (customer_id, data["code"], data["type"], data["valid_from"], data["valid_to"],
             data["response_hours"], data["resolution_hours"], data["prepaid_hours"],
             data["notes"], iso(now)),
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("code: the customer already has a contract {code}",
                           code=data["code"])) from None
    set_links(tx, customer_id, contract_id, dict(values))
    _replan_open_cases(tx, customer_id)
    log.info("contract.created", customer_id=customer_id, contract_id=contract_id,
             code=data["code"], valid_from=data["valid_from"], valid_to=data["valid_to"])
    return contract_id


def update_contract(tx: WriteTx, customer_id: int, contract_id: int,
                    values: Mapping[str, Any], *, now: datetime) -> None:
    """Replace a contract's fields (all of them, checked as for a new one). Only one of
    `customer_id`'s own; its open interventions get their deadlines worked out again
    (the dates or hours may have changed)."""
    row = tx.execute("SELECT customer_id, prepaid_hours FROM contracts WHERE id = ?",
                     (contract_id,)).fetchone()
    if row is None or row[0] != customer_id:
        raise NotFound(msg("customer {customer} has no contract {id}", customer=customer_id,
                           id=contract_id))
    data = clean(values)
    try:
        tx.execute(
            "UPDATE contracts SET code = ?, type = ?, valid_from = ?, valid_to = ?,"
            " response_hours = ?, resolution_hours = ?, prepaid_hours = ?, notes = ?"
            " WHERE id = ?",
            (data["code"], data["type"], data["valid_from"], data["valid_to"],
             data["response_hours"], data["resolution_hours"], data["prepaid_hours"],
             data["notes"], contract_id))
    except INTEGRITY_ERRORS:
        raise Conflict(msg("code: the customer already has a contract {code}",
                           code=data["code"])) from None
    set_links(tx, customer_id, contract_id, dict(values))
    if data["prepaid_hours"] != row[1]:
        # A new package (topped up, say): its low-hours warning may come again.
        tx.execute("UPDATE contracts SET low_hours_alerted_at = NULL WHERE id = ?",
                   (contract_id,))
    _replan_open_cases(tx, customer_id)
    log.info("contract.updated", customer_id=customer_id, contract_id=contract_id,
             code=data["code"], valid_from=data["valid_from"], valid_to=data["valid_to"],
             at=iso(now))


def _replan_open_cases(tx: WriteTx, customer_id: int) -> None:
    tx.execute("UPDATE interventions SET sla_planned_at = NULL"
               " WHERE customer_id = ? AND status = ?", (customer_id, Status.OPEN))


def covering_contract(tx: WriteTx, customer_id: int, day: date,
                      equipment_id: int | None = None) -> DbRow | None:
    """The customer's contract valid on `day`: one that lists the case's machine
    first, else the latest started when several are."""
    row: DbRow | None = tx.execute(
        f"SELECT {COLUMNS} FROM contracts WHERE customer_id = ? AND valid_from <= ?"  # noqa: S608
        " AND (valid_to IS NULL OR valid_to >= ?)"
        " ORDER BY CASE WHEN EXISTS (SELECT 1 FROM contract_equipment e"
        " WHERE e.contract_id = contracts.id AND e.equipment_id = ?) THEN 0 ELSE 1 END,"
        " valid_from DESC, id DESC LIMIT 1",
        (customer_id, day.isoformat(), day.isoformat(), equipment_id),
    ).fetchone()
    return row


def used_hours(tx: WriteTx, contract_id: int) -> float:
    minutes = tx.execute(USED_MINUTES_SQL, (contract_id,)).fetchone()[0]
    return int(minutes) / 60


async def list_contracts(conn: ReadTx, customer_id: int) -> list[ContractView]:
    """A customer's contracts, newest validity first, with the hours used and left."""
    rows = await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM contracts WHERE customer_id = ?"  # noqa: S608
        " ORDER BY valid_from DESC, id DESC", (customer_id,))
    links = await links_of(conn, [int(r["id"]) for r in rows])
    views = []
    for row in rows:
        used = await conn.execute_fetchall(USED_MINUTES_SQL, (row["id"],))
        views.append(view(row, int(next(iter(used))[0]) / 60, links[int(row["id"])]))
    return views


async def get_contract(conn: ReadTx, contract_id: int) -> ContractView | None:
    rows = list(await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM contracts WHERE id = ?", (contract_id,)))  # noqa: S608
    if not rows:
        return None
    used = await conn.execute_fetchall(USED_MINUTES_SQL, (contract_id,))
    links = await links_of(conn, [contract_id])
    return view(rows[0], int(next(iter(used))[0]) / 60, links[contract_id])


def view(row: Any, used: float, links: Mapping[str, list[int]]) -> ContractView:
    prepaid = row["prepaid_hours"]
    return {
        "id": row["id"], "customer_id": row["customer_id"], "code": row["code"],
        "type": row["type"], "valid_from": row["valid_from"], "valid_to": row["valid_to"],
        "response_hours": row["response_hours"], "resolution_hours": row["resolution_hours"],
        "prepaid_hours": prepaid, "notes": row["notes"], "used_hours": round(used, 2),
        "remaining_hours": None if prepaid is None else round(prepaid - used, 2),
        "created_at": row["created_at"],
        "equipment_ids": links["equipment_ids"], "schedule_ids": links["schedule_ids"],
    }


def _day(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidContract(msg("{field}: should be a date as YYYY-MM-DD",
                                  field=name)) from None


def _hours(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    # Text too: a page's form sends its numbers as typed.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidContract(msg("{field}: is not a number of hours", field=name))
    try:
        hours = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
    except ValueError:
        raise InvalidContract(msg("{field}: is not a number of hours", field=name)) from None
    if not math.isfinite(hours) or hours < 0 or hours > MAX_HOURS:
        raise InvalidContract(msg("{field}: should be between 0 and {most}", field=name,
                                  most=f"{MAX_HOURS:g}"))
    return hours
