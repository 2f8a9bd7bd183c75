"""The installed base: each machine by its serial number, at a customer and maybe one of
its sites, with its warranty and its intervention history.

A serial is unique per customer (two makers may print the same one; one customer's
archive may not hold it twice). Lookups by serial match it as stored, or upper-cased:
labels print serials in capitals, people type them in either case.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.records import fields
from nexusmail.records.customers import require_active
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage.connections import INTEGRITY_ERRORS, DbRow, ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound

EDITABLE = ("customer_id", "site_id", "serial", "model", "description", "installed_on",
            "warranty_until", "notes")
COLUMNS = ("id, customer_id, site_id, serial, model, description, installed_on,"
           " warranty_until, notes")
MAX_SERIAL_CHARS = 100
# How many past interventions a machine's card lists.
HISTORY_LIMIT = 100


class EquipmentView(TypedDict):
    id: int
    customer_id: int
    site_id: int | None
    serial: str
    model: str
    description: str
    installed_on: str | None
    warranty_until: str | None
    notes: str


class HistoryItem(TypedDict):
    number: int
    subject: str
    status: str
    status_reason: str
    request_type: str
    created_at: str
    closed_at: str | None


class EquipmentDetail(EquipmentView):
    interventions: list[HistoryItem]    # newest first


class EquipmentPage(TypedDict):
    items: list[EquipmentView]
    total: int
    limit: int
    offset: int


def serial(value: Any) -> str:
    text = fields.text_or_none(value)
    if text is None:
        raise InvalidRecord(msg("{field}: is required", field="serial"))
    if len(text) > MAX_SERIAL_CHARS or any(c.isspace() for c in text):
        raise InvalidRecord(msg(
            "{field}: should be one word of at most {most} characters", field="serial",
            most=MAX_SERIAL_CHARS))
    return text


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "customer_id":
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidRecord(msg("{field}: is required", field="customer_id"))
            out[key] = value
        elif key == "site_id":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise InvalidRecord(msg("{field}: should be a site's id or null",
                                        field="site_id"))
            out[key] = value
        elif key == "serial":
            out[key] = serial(value)
        elif key in ("model", "description", "notes"):
            out[key] = fields.text_or_none(value) or ""
        elif key in ("installed_on", "warranty_until"):
            out[key] = fields.iso_date(value, key)
        else:
            raise InvalidRecord(msg("{field}: unknown field", field=key))
    return out


def add_equipment(tx: WriteTx, values: Mapping[str, Any], *, now: datetime) -> int:
    data = clean(values)
    if "customer_id" not in data:
        raise InvalidRecord(msg("{field}: is required", field="customer_id"))
    if "serial" not in data:
        raise InvalidRecord(msg("{field}: is required", field="serial"))
    _check_links(tx, data["customer_id"], data.get("site_id"))
    _check_serial_free(tx, data["customer_id"], data["serial"], None)
    columns = list(data)
    try:
        equipment_id: int = tx.execute(
            f"INSERT INTO equipment ({', '.join(columns)}, created_at, updated_at)"  # noqa: S608
            f" VALUES ({', '.join('?' for _ in columns)}, ?, ?) RETURNING id",
            [*data.values(), iso(now), iso(now)],
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("serial: customer {customer} already has {serial}",
                           customer=data["customer_id"], serial=data["serial"])) from None
    return equipment_id


def update_equipment(tx: WriteTx, equipment_id: int, changes: Mapping[str, Any], *,
                     now: datetime) -> None:
    row = tx.execute("SELECT customer_id, site_id, serial FROM equipment WHERE id = ?",
                     (equipment_id,)).fetchone()
    if row is None:
        raise NotFound(msg("equipment {id} does not exist", id=equipment_id))
    data = clean(changes)
    customer_id = data.get("customer_id", row[0])
    # A machine moved to another customer leaves the old customer's site behind.
    if customer_id != row[0] and "site_id" not in data:
        data["site_id"] = None
    _check_links(tx, customer_id, data.get("site_id", row[1]))
    if "serial" in data or "customer_id" in data:
        _check_serial_free(tx, customer_id, data.get("serial", row[2]), equipment_id)
    if data:
        tx.execute(
            f"UPDATE equipment SET {', '.join(f'{c} = ?' for c in data)}, updated_at = ?"  # noqa: S608
            " WHERE id = ?", [*data.values(), iso(now), equipment_id])


def _check_links(tx: WriteTx, customer_id: int, site_id: int | None) -> None:
    try:
        require_active(tx, customer_id)
    except NotFound:
        raise InvalidRecord(msg("{field}: customer {id} does not exist",
                                field="customer_id", id=customer_id)) from None
    if site_id is None:
        return
    row = tx.execute("SELECT customer_id FROM sites WHERE id = ?", (site_id,)).fetchone()
    if row is None or row[0] != customer_id:
        raise InvalidRecord(msg("{field}: site {site} is not a site of customer {customer}",
                                field="site_id", site=site_id, customer=customer_id))


def _check_serial_free(tx: WriteTx, customer_id: int, value: str,
                       equipment_id: int | None) -> None:
    row = tx.execute("SELECT id FROM equipment WHERE customer_id = ? AND serial = ?",
                     (customer_id, value)).fetchone()
    if row is not None and row[0] != equipment_id:
        raise Conflict(msg("serial: customer {customer} already has {serial} (equipment {id})",
                           customer=customer_id, serial=value, id=row[0]))


def view(row: DbRow) -> EquipmentView:
    return {
        "id": row["id"], "customer_id": row["customer_id"], "site_id": row["site_id"],
        "serial": row["serial"], "model": row["model"], "description": row["description"],
        "installed_on": row["installed_on"], "warranty_until": row["warranty_until"],
        "notes": row["notes"],
    }


async def find_equipment(conn: ReadTx, *, customer_id: int | None = None,
                         serial_text: str | None = None, site_id: int | None = None,
                         limit: int = 50, offset: int = 0,
                         owner: str | None = None) -> EquipmentPage:
    """A page of equipment by id, of one customer, site or serial when given; `owner`:
    only the machines of customers they own."""
    where: list[str] = []
    params: list[Any] = []
    if owner is not None:
        where.append("customer_id IN (SELECT id FROM customers WHERE owner = ?)")
        params.append(owner.lower())
    if customer_id is not None:
        where.append("customer_id = ?")
        params.append(customer_id)
    if site_id is not None:
        where.append("site_id = ?")
        params.append(site_id)
    if serial_text is not None and serial_text.strip():
        # Both forms compared by equality, so the serial index answers.
        where.append("serial IN (?, ?)")
        params += [serial_text.strip(), serial_text.strip().upper()]
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = await conn.execute_fetchall(
        "SELECT count(*) FROM equipment" + clause, params)  # noqa: S608
    rows = await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM equipment{clause} ORDER BY id LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset])
    return {"items": [view(r) for r in rows], "total": int(next(iter(total))[0]),
            "limit": limit, "offset": offset}


async def get_equipment(conn: ReadTx, equipment_id: int) -> EquipmentDetail | None:
    """A machine with its interventions, newest first."""
    rows = list(await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM equipment WHERE id = ?", (equipment_id,)))  # noqa: S608
    if not rows:
        return None
    return {**view(rows[0]), "interventions": await history(conn, equipment_id)}


async def history(conn: ReadTx, equipment_id: int,
                  limit: int = HISTORY_LIMIT) -> list[HistoryItem]:
    rows = await conn.execute_fetchall(
        "SELECT number, subject, status, status_reason, request_type, created_at, closed_at"
        " FROM interventions WHERE equipment_id = ? ORDER BY number DESC LIMIT ?",
        (equipment_id, limit))
    return [
        {"number": r["number"], "subject": r["subject"], "status": r["status"],
         "status_reason": r["status_reason"], "request_type": r["request_type"],
         "created_at": r["created_at"], "closed_at": r["closed_at"]}
        for r in rows
    ]
