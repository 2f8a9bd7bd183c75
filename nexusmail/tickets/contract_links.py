"""What a contract names as its own: the customer's machines it lists and the service
schedules it pays for (a schedule belongs to at most one contract). Only the
contract's customer's machines and schedules can be linked; saving the links replaces
them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nexusmail.i18n import msg
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage.connections import ReadTx, WriteTx

LINK_FIELDS = ("equipment_ids", "schedule_ids")
MAX_LINKS = 500


def ids(value: Any, field: str) -> list[int]:
    """A list of record ids as given (a page's form sends text)."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRecord(msg("{field}: should be a list of ids", field=field))
    found: list[int] = []
    for item in value:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit():
            raise InvalidRecord(msg("{field}: should be a list of ids", field=field))
        found.append(int(text))
    if len(found) > MAX_LINKS:
        raise InvalidRecord(msg("{field}: more than {most}", field=field, most=MAX_LINKS))
    return sorted(set(found))


def set_links(tx: WriteTx, customer_id: int, contract_id: int,
              values: dict[str, Any]) -> None:
    """Replace the links `values` names (a field absent stays as it was)."""
    if "equipment_ids" in values:
        machines = ids(values["equipment_ids"], "equipment_ids")
        _require_own(tx, "equipment", machines, customer_id, "equipment_ids")
        tx.execute("DELETE FROM contract_equipment WHERE contract_id = ?", (contract_id,))
        tx.executemany("INSERT INTO contract_equipment (contract_id, equipment_id)"
                       " VALUES (?, ?)", [(contract_id, m) for m in machines])
    if "schedule_ids" in values:
        schedules = ids(values["schedule_ids"], "schedule_ids")
        _require_own(tx, "schedules", schedules, customer_id, "schedule_ids")
        tx.execute("UPDATE schedules SET contract_id = NULL WHERE contract_id = ?",
                   (contract_id,))
        tx.executemany("UPDATE schedules SET contract_id = ? WHERE id = ?",
                       [(contract_id, s) for s in schedules])


def _require_own(tx: WriteTx, table: str, wanted: Sequence[int], customer_id: int,
                 field: str) -> None:
    for item in wanted:
        # `table` is one of our two constants, never input.
        row = tx.execute(f"SELECT customer_id FROM {table} WHERE id = ?",  # noqa: S608
                         (item,)).fetchone()
        if row is None or row[0] != customer_id:
            raise InvalidRecord(msg("{field}: {id} is not one of customer {customer}'s",
                                    field=field, id=item, customer=customer_id))


async def links_of(conn: ReadTx, contract_ids: Sequence[int]
                   ) -> dict[int, dict[str, list[int]]]:
    """`{"equipment_ids": [...], "schedule_ids": [...]}` of each contract, ids
    ascending (empty lists for one without)."""
    found: dict[int, dict[str, list[int]]] = {
        c: {"equipment_ids": [], "schedule_ids": []} for c in contract_ids}
    if not found:
        return found
    marks = ", ".join("?" for _ in found)
    # Only placeholders are formatted in; the ids travel as parameters.
    machines = await conn.execute_fetchall(
        f"SELECT contract_id, equipment_id FROM contract_equipment"  # noqa: S608
        f" WHERE contract_id IN ({marks}) ORDER BY equipment_id", tuple(found))
    schedules = await conn.execute_fetchall(
        f"SELECT contract_id, id FROM schedules WHERE contract_id IN ({marks})"  # noqa: S608
        " ORDER BY id", tuple(found))
    for row in machines:
        found[int(row[0])]["equipment_ids"].append(int(row[1]))
    for row in schedules:
        found[int(row[0])]["schedule_ids"].append(int(row[1]))
    return found


async def customer_schedules(conn: ReadTx, customer_id: int) -> list[dict[str, Any]]:
    """The customer's service schedules a contract may name: `{id, subject, active}`."""
    rows = await conn.execute_fetchall(
        "SELECT id, subject, active FROM schedules WHERE customer_id = ? ORDER BY id",
        (customer_id,))
    return [{"id": r["id"], "subject": r["subject"], "active": bool(r["active"])}
            for r in rows]
