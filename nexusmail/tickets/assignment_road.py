"""What a technician needs on the road, for the assignment mail: the site (address and
how to get in) and the machine (model, serial, warranty, its last interventions).

Read in the transaction that queues the mail, so the mail says what the case said
when the technician was assigned.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from nexusmail.storage.connections import WriteTx

# The machine's earlier interventions the mail lists, newest first.
HISTORY_SHOWN = 3


def road_context(tx: WriteTx, number: int, *, today: date) -> dict[str, Any]:
    """`site` and `equipment` of intervention `number` for the template (None when
    the case names none)."""
    row = tx.execute("SELECT site_id, equipment_id FROM interventions WHERE number = ?",
                     (number,)).fetchone()
    if row is None:
        return {"site": None, "equipment": None}
    return {"site": _site(tx, row["site_id"]),
            "equipment": _equipment(tx, row["equipment_id"], number, today)}


def _site(tx: WriteTx, site_id: int | None) -> dict[str, str] | None:
    if site_id is None:
        return None
    site = tx.execute("SELECT name, address, access_notes FROM sites WHERE id = ?",
                      (site_id,)).fetchone()
    return None if site is None else {"name": site["name"], "address": site["address"],
                                      "access_notes": site["access_notes"]}


def _equipment(tx: WriteTx, equipment_id: int | None, number: int,
               today: date) -> dict[str, Any] | None:
    if equipment_id is None:
        return None
    machine = tx.execute("SELECT serial, model, warranty_until FROM equipment WHERE id = ?",
                         (equipment_id,)).fetchone()
    if machine is None:
        return None
    history = tx.execute(
        "SELECT number, created_at, subject, status, status_reason FROM interventions"
        " WHERE equipment_id = ? AND number <> ? ORDER BY number DESC LIMIT ?",
        (equipment_id, number, HISTORY_SHOWN)).fetchall()
    return {
        "serial": machine["serial"], "model": machine["model"],
        "warranty_until": machine["warranty_until"] or "",
        "warranty": warranty_state(machine["warranty_until"], today),
        "history": [{"number": h["number"], "date": h["created_at"][:10],
                     "subject": h["subject"], "status": h["status"],
                     "reason": h["status_reason"]} for h in history],
    }


def warranty_state(warranty_until: str | None, today: date) -> str:
    """"under" through the last day covered, "expired" after it, "" when not known."""
    if not warranty_until:
        return ""
    return "under" if warranty_until >= today.isoformat() else "expired"
