"""Sites: where the technician drives to (a plant, a shop, a flat), with the notes that
get them in. A site's name is unique within its customer."""

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

EDITABLE = ("name", "address", "access_notes")
COLUMNS = "id, customer_id, name, address, access_notes"
MAX_NAME_CHARS = 200


class SiteView(TypedDict):
    id: int
    customer_id: int
    name: str
    address: str
    access_notes: str


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "name":
            name = fields.text_or_none(value)
            if name is None:
                raise InvalidRecord(msg("{field}: is required", field="name"))
            if len(name) > MAX_NAME_CHARS:
                raise InvalidRecord(msg(
                    "{field}: is longer than {most} characters", field="name",
                    most=MAX_NAME_CHARS))
            out[key] = name
        elif key in ("address", "access_notes"):
            out[key] = fields.text_or_none(value) or ""
        else:
            raise InvalidRecord(msg("{field}: unknown field", field=key))
    return out


def add_site(tx: WriteTx, customer_id: int, values: Mapping[str, Any], *,
             now: datetime) -> int:
    require_active(tx, customer_id)
    data = {"address": "", "access_notes": "", **clean(values)}
    if "name" not in data:
        raise InvalidRecord(msg("{field}: is required", field="name"))
    _check_name_free(tx, customer_id, data["name"], None)
    try:
        site_id: int = tx.execute(
            "INSERT INTO sites (customer_id, name, address, access_notes, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (customer_id, data["name"], data["address"], data["access_notes"], iso(now),
             iso(now)),
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("name: customer {customer} has a site named {name!r}",
                           customer=customer_id, name=data["name"])) from None
    return site_id


def update_site(tx: WriteTx, site_id: int, changes: Mapping[str, Any], *,
                now: datetime) -> None:
    row = tx.execute("SELECT customer_id FROM sites WHERE id = ?", (site_id,)).fetchone()
    if row is None:
        raise NotFound(msg("site {id} does not exist", id=site_id))
    require_active(tx, row[0])
    data = clean(changes)
    if "name" in data:
        _check_name_free(tx, row[0], data["name"], site_id)
    if data:
        tx.execute(
            f"UPDATE sites SET {', '.join(f'{c} = ?' for c in data)}, updated_at = ?"  # noqa: S608
            " WHERE id = ?", [*data.values(), iso(now), site_id])


def _check_name_free(tx: WriteTx, customer_id: int, name: str, site_id: int | None) -> None:
    row = tx.execute("SELECT id FROM sites WHERE customer_id = ? AND name = ?",
                     (customer_id, name)).fetchone()
    if row is not None and row[0] != site_id:
        raise Conflict(msg("name: customer {customer} has a site named {name!r}",
                           customer=customer_id, name=name))


def view(row: DbRow) -> SiteView:
    return {"id": row["id"], "customer_id": row["customer_id"], "name": row["name"],
            "address": row["address"], "access_notes": row["access_notes"]}


async def list_sites(conn: ReadTx, customer_id: int) -> list[SiteView]:
    rows = await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM sites WHERE customer_id = ? ORDER BY id",  # noqa: S608
        (customer_id,))
    return [view(r) for r in rows]


async def get_site(conn: ReadTx, site_id: int) -> SiteView | None:
    rows = list(await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM sites WHERE id = ?", (site_id,)))  # noqa: S608
    return view(rows[0]) if rows else None
