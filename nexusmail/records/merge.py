"""Merging two customers: the duplicates mail always creates (the same firm writing from
a second address before anyone linked it) become one.

Everything of the merged customer moves to the one it is merged into: contacts, mail
domains, sites, equipment, interventions, service schedules and contracts (two
contracts with one code refuse the merge: their hours and dates cannot be added up
by a rule, an operator renames one first). A site with the same
name, or a machine with the same serial, as one the target already has is the same
place or machine: its interventions follow the target's one and the duplicate row goes.
The target keeps its own details and takes the merged one's only where it has none.
The merged customer's row stays, with `merged_into` set, so links to it can still say
where it went; it is no longer listed, matched or editable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from nexusmail.clock import iso
from nexusmail.i18n import message_of, msg
from nexusmail.records.customers import require_active
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import Conflict, NotFound

# Details the target takes from the merged customer when it has none of its own.
_FILLED = ("tax_id", "address", "phone", "work_phone", "email", "language", "owner")


@dataclass(frozen=True)
class Merged:
    contacts: int
    sites: int
    equipment: int
    interventions: int


def merge_customers(tx: WriteTx, source: int, into: int, *, now: datetime,
                    owner: str | None = None) -> Merged:
    """Move everything of customer `source` to customer `into`, then mark `source`
    merged. InvalidRecord names `into` when it cannot take them. With `owner` (an
    operator limited to their own customers) `into` must be theirs too: another's
    customer is refused as if it did not exist, so its number tells them nothing."""
    if source == into:
        raise InvalidRecord(msg("{field}: a customer cannot be merged into itself",
                                field="into"))
    require_active(tx, source)
    try:
        require_active(tx, into)
        if owner is not None and tx.execute(
                "SELECT 1 FROM customers WHERE id = ? AND owner = ?",
                (into, owner.lower())).fetchone() is None:
            raise NotFound(msg("customer {id} does not exist", id=into))
    except (NotFound, Conflict) as exc:
        raise InvalidRecord(msg("{field}: {problem}",
                                field="into", problem=message_of(exc))) from None
    clash = tx.execute(
        "SELECT s.code FROM contracts s JOIN contracts t ON t.customer_id = ?"
        " AND t.code = s.code WHERE s.customer_id = ? ORDER BY s.code LIMIT 1",
        (into, source)).fetchone()
    if clash is not None:
        raise Conflict(msg("contracts: customers {source} and {into} both have a contract"
                           " {code}; rename one before merging", source=source, into=into,
                           code=clash[0]))
    sites = _move_sites(tx, source, into)
    equipment = _move_equipment(tx, source, into)
    moved = {}
    for table in ("contacts", "interventions", "schedules", "customer_domains", "contracts"):
        # Table names are the constants above, never input.
        moved[table] = tx.execute(
            f"UPDATE {table} SET customer_id = ? WHERE customer_id = ?",  # noqa: S608
            (into, source)).rowcount
    _fill_details(tx, source, into)
    tx.execute("UPDATE customers SET merged_into = ? WHERE merged_into = ?", (into, source))
    tx.execute("UPDATE customers SET merged_into = ?, updated_at = ? WHERE id = ?",
               (into, iso(now), source))
    tx.execute("UPDATE customers SET updated_at = ? WHERE id = ?", (iso(now), into))
    return Merged(contacts=moved["contacts"], sites=sites, equipment=equipment,
                  interventions=moved["interventions"])


def _move_sites(tx: WriteTx, source: int, into: int) -> int:
    rows = tx.execute(
        "SELECT s.id, s.address, s.access_notes, t.id AS twin FROM sites s"
        " LEFT JOIN sites t ON t.customer_id = ? AND t.name = s.name"
        " WHERE s.customer_id = ?", (into, source)).fetchall()
    for row in rows:
        if row["twin"] is None:
            tx.execute("UPDATE sites SET customer_id = ? WHERE id = ?", (into, row["id"]))
            continue
        twin = row["twin"]
        tx.execute("UPDATE equipment SET site_id = ? WHERE site_id = ?", (twin, row["id"]))
        tx.execute("UPDATE interventions SET site_id = ? WHERE site_id = ?",
                   (twin, row["id"]))
        tx.execute(
            "UPDATE sites SET address = CASE WHEN address = '' THEN ? ELSE address END,"
            " access_notes = CASE WHEN access_notes = '' THEN ? ELSE access_notes END"
            " WHERE id = ?", (row["address"], row["access_notes"], twin))
        tx.execute("DELETE FROM sites WHERE id = ?", (row["id"],))
    return len(rows)


def _move_equipment(tx: WriteTx, source: int, into: int) -> int:
    rows = tx.execute(
        "SELECT e.id, e.site_id, e.model, e.description, e.installed_on, e.warranty_until,"
        " e.notes, t.id AS twin FROM equipment e"
        " LEFT JOIN equipment t ON t.customer_id = ? AND t.serial = e.serial"
        " WHERE e.customer_id = ?", (into, source)).fetchall()
    for row in rows:
        if row["twin"] is None:
            tx.execute("UPDATE equipment SET customer_id = ? WHERE id = ?", (into, row["id"]))
            continue
        twin = row["twin"]
        tx.execute("UPDATE interventions SET equipment_id = ? WHERE equipment_id = ?",
                   (twin, row["id"]))
        tx.execute(
            "UPDATE equipment SET site_id = coalesce(site_id, ?),"
            " model = CASE WHEN model = '' THEN ? ELSE model END,"
            " description = CASE WHEN description = '' THEN ? ELSE description END,"
            " installed_on = coalesce(installed_on, ?),"
            " warranty_until = coalesce(warranty_until, ?),"
            " notes = CASE WHEN notes = '' THEN ? ELSE notes END WHERE id = ?",
            (row["site_id"], row["model"], row["description"], row["installed_on"],
             row["warranty_until"], row["notes"], twin))
        tx.execute("DELETE FROM equipment WHERE id = ?", (row["id"],))
    return len(rows)


def _fill_details(tx: WriteTx, source: int, into: int) -> None:
    # Column names are the constants of _FILLED, never input.
    src = tx.execute(
        f"SELECT {', '.join(_FILLED)}, notes, verified FROM customers WHERE id = ?",  # noqa: S608
        (source,)).fetchone()
    sets = ", ".join(f"{c} = coalesce({c}, ?)" for c in _FILLED)
    tx.execute(
        f"UPDATE customers SET {sets},"  # noqa: S608
        " notes = CASE WHEN notes = '' THEN ? ELSE notes END,"
        " verified = CASE WHEN verified = 1 THEN 1 ELSE ? END WHERE id = ?",
        [*(src[c] for c in _FILLED), src["notes"], src["verified"], into])
