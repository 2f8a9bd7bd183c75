"""Writing imported rows into the archive: find each record again, change what differs,
create what is new. Running the same file twice changes nothing the second time.

Customers are found by tax id, else by email (a customer that mail created knows only
its address: the import completes it, unless it already has another tax id). Machines
are found by serial within their customer (as written or upper case, as the archive
compares serials), sites by name within the customer, created when new. An empty cell
leaves the stored value as it is: a partial export never erases what operators typed.

Each row runs in a savepoint of the caller's transaction: a refused row is undone
alone and reported with its line; the others stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from nexusmail.i18n import Msg, message_of, msg
from nexusmail.records import customers, equipment, sites
from nexusmail.records.fields import InvalidRecord
from nexusmail.records.import_rows import CustomerRow, EquipmentRow, RowRefused
from nexusmail.storage.connections import INTEGRITY_ERRORS, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound

R = TypeVar("R", CustomerRow, EquipmentRow)
# What refuses one row; anything else is a bug and fails the whole import.
_ROW_ERRORS: tuple[type[Exception], ...] = (
    RowRefused, InvalidRecord, Conflict, NotFound, *INTEGRITY_ERRORS)
_CUSTOMER_FIELDS = ("name", "tax_id", "email", "address", "phone", "work_phone",
                    "language", "notes")
_EQUIPMENT_FIELDS = ("model", "description", "installed_on", "warranty_until", "notes")


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str | Msg]] = field(default_factory=list)  # (line, reason)

    def add(self, other: ImportCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors


def import_customers(tx: WriteTx, rows: Sequence[CustomerRow], *, now: datetime,
                     default_owner: str | None, dry_run: bool = False) -> ImportCounts:
    """Upsert the customer rows; with `dry_run` every change is undone at the end."""
    return _each_row(tx, rows, lambda row: _upsert_customer(tx, row, now, default_owner),
                     dry_run)


def import_equipment(tx: WriteTx, rows: Sequence[EquipmentRow], *, now: datetime,
                     dry_run: bool = False) -> ImportCounts:
    """Upsert the equipment rows (and the sites they name)."""
    return _each_row(tx, rows, lambda row: _upsert_equipment(tx, row, now), dry_run)


def _each_row(tx: WriteTx, rows: Sequence[R], upsert: Callable[[R], str],
              dry_run: bool) -> ImportCounts:
    counts = ImportCounts()
    if dry_run:
        tx.execute("SAVEPOINT import_dry_run")
    for row in rows:
        tx.execute("SAVEPOINT import_row")
        try:
            outcome = upsert(row)
        except _ROW_ERRORS as exc:
            tx.execute("ROLLBACK TO SAVEPOINT import_row")
            counts.errors.append((row.line, message_of(exc)))
        else:
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        tx.execute("RELEASE SAVEPOINT import_row")
    if dry_run:
        tx.execute("ROLLBACK TO SAVEPOINT import_dry_run")
        tx.execute("RELEASE SAVEPOINT import_dry_run")
    return counts


def _upsert_customer(tx: WriteTx, row: CustomerRow, now: datetime,
                     default_owner: str | None) -> str:
    found = _find_customer(tx, row)
    wanted = {name: getattr(row, name) for name in _CUSTOMER_FIELDS
              if getattr(row, name) not in (None, "")}
    if found is None:
        customers.create_customer(tx, {**wanted, "mail_domains": list(row.mail_domains)},
                                  now=now, default_owner=default_owner)
        return "created"
    changes: dict[str, Any] = {k: v for k, v in wanted.items() if found[k] != v}
    if row.mail_domains:
        held = [r[0] for r in tx.execute(
            "SELECT domain FROM customer_domains WHERE customer_id = ? ORDER BY domain",
            (found["id"],)).fetchall()]
        if sorted(row.mail_domains) != held:
            changes["mail_domains"] = list(row.mail_domains)
    if not changes:
        return "unchanged"
    customers.update_customer(tx, found["id"], changes, now=now)
    return "updated"


def _find_customer(tx: WriteTx, row: CustomerRow) -> Any:
    columns = "id, " + ", ".join(_CUSTOMER_FIELDS)
    if row.tax_id is not None:
        found = tx.execute(
            f"SELECT {columns} FROM customers WHERE tax_id = ?"  # noqa: S608
            " AND merged_into IS NULL ORDER BY id LIMIT 1", (row.tax_id,)).fetchone()
        if found is not None:
            return found
    if row.email is None:
        return None
    found = tx.execute(
        f"SELECT {columns} FROM customers WHERE email = ?"  # noqa: S608
        " AND merged_into IS NULL ORDER BY id LIMIT 1", (row.email,)).fetchone()
    # The same address under another tax id is another firm (an accountant's, a group's).
    if found is not None and row.tax_id is not None and found["tax_id"] not in (
            None, row.tax_id):
        return None
    return found


def _upsert_equipment(tx: WriteTx, row: EquipmentRow, now: datetime) -> str:
    customer_id = _customer_of(tx, row)
    wanted: dict[str, Any] = {name: getattr(row, name) for name in _EQUIPMENT_FIELDS
                              if getattr(row, name) not in (None, "")}
    for name in ("installed_on", "warranty_until"):
        if name in wanted:
            wanted[name] = wanted[name].isoformat()
    if row.site:
        wanted["site_id"] = _site_of(tx, customer_id, row.site, now)
    found = tx.execute(
        "SELECT id, site_id, model, description, installed_on, warranty_until, notes"
        " FROM equipment WHERE customer_id = ? AND serial IN (?, ?) ORDER BY id LIMIT 1",
        (customer_id, row.serial, row.serial.upper())).fetchone()
    if found is None:
        equipment.add_equipment(
            tx, {"customer_id": customer_id, "serial": row.serial, **wanted}, now=now)
        return "created"
    changes = {k: v for k, v in wanted.items() if found[k] != v}
    if not changes:
        return "unchanged"
    equipment.update_equipment(tx, found["id"], changes, now=now)
    return "updated"


def _customer_of(tx: WriteTx, row: EquipmentRow) -> int:
    if row.customer_id is not None:
        found = tx.execute("SELECT id, merged_into FROM customers WHERE id = ?",
                           (row.customer_id,)).fetchone()
        if found is None:
            raise RowRefused(msg("customer_id {id}: no such customer", id=row.customer_id))
        # A merged customer's machines belong to the one it went into.
        return int(found["merged_into"] or found["id"])
    found = tx.execute("SELECT id FROM customers WHERE tax_id = ? AND merged_into IS NULL"
                       " ORDER BY id LIMIT 1", (row.customer_tax_id,)).fetchone()
    if found is None:
        raise RowRefused(msg("customer_tax_id {tax_id}: no customer has it (import the"
                             " customers first)", tax_id=row.customer_tax_id))
    return int(found["id"])


def _site_of(tx: WriteTx, customer_id: int, name: str, now: datetime) -> int:
    found = tx.execute("SELECT id FROM sites WHERE customer_id = ? AND name = ?",
                       (customer_id, name)).fetchone()
    if found is not None:
        return int(found["id"])
    return sites.add_site(tx, customer_id, {"name": name}, now=now)
