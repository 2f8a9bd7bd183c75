"""Changing an intervention after it was opened: putting it on hold with a reason, and
editing its type, priority, period, subject and links (contact, site, machine).

Every change is written on the thread with who made it, so the case's history says
who moved the visit or swapped the machine, and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nexusmail.clock import iso
from nexusmail.i18n import Word, msg
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import Conflict, NewMessage, add_message, intervention_status
from nexusmail.tickets.message_extra import MessageExtra
from nexusmail.tickets.models import Direction, MessageKind, Status

MAX_REASON_CHARS = 1000
# The columns an edit may change, and how the thread names each.
EDITABLE = {
    "request_type": "type", "priority": "priority", "desired_from": "desired from",
    "desired_to": "desired to", "subject": "subject", "contact_id": "contact",
    "site_id": "site", "equipment_id": "equipment", "channel": "channel",
    "requested_at": "requested at",
    "notify_customer_on_resolve": "closing mail to the customer",
}
# What an intervention's SLA deadlines are worked out from (with its customer's contracts).
SLA_INPUTS = {"request_type", "requested_at", "equipment_id"}


class EditRefused(ValueError):
    """The change names something the case cannot take (another customer's site)."""


def hold_intervention(tx: WriteTx, number: int, *, reason: str, now: datetime,
                      author: str) -> None:
    """Suspend an open case; the reason goes on the thread and in status_reason.
    `POST .../reopen` resumes it."""
    reason = reason.strip()
    if not reason:
        raise EditRefused(msg("reason: is required"))
    if len(reason) > MAX_REASON_CHARS:
        raise EditRefused(msg("reason: is longer than {count} characters",
                                  count=MAX_REASON_CHARS))
    status = intervention_status(tx, number)
    if status is not Status.OPEN:
        raise Conflict(msg("intervention {number} is {status}, not open", number=number,
                           status=Word(status)))
    tx.execute("UPDATE interventions SET status = ?, status_reason = ?, updated_at = ?"
               " WHERE number = ? AND status = ?",
               (Status.ON_HOLD, reason, iso(now), number, Status.OPEN))
    add_message(tx, number, NewMessage(
        kind=MessageKind.STATUS_CHANGE, direction=Direction.INTERNAL, author=author,
        body_text=reason, extra={"status": Status.ON_HOLD}), now=now)


def edit_intervention(tx: WriteTx, number: int, changes: Mapping[str, Any], *,
                      now: datetime, author: str) -> dict[str, list[Any]]:
    """Apply `changes` (stored column -> value, already checked and resolved to ids);
    write one thread entry listing what changed, old and new. Returns that list."""
    intervention_status(tx, number)  # NotFound
    columns = [c for c in changes if c in EDITABLE]
    if not columns:
        return {}
    row = tx.execute(f"SELECT {', '.join(columns)} FROM interventions"  # noqa: S608
                     " WHERE number = ?", (number,)).fetchone()
    changed = {c: [row[c], changes[c]] for c in columns if row[c] != changes[c]}
    if not changed:
        return {}
    # Column names come from EDITABLE, never from the request.
    tx.execute(f"UPDATE interventions SET {', '.join(f'{c} = ?' for c in changed)},"  # noqa: S608
               " updated_at = ? WHERE number = ?",
               [*(new for _, new in changed.values()), iso(now), number])
    if changed.keys() & SLA_INPUTS:
        # The deadlines hang on these: the sweep works them out again.
        tx.execute("UPDATE interventions SET sla_planned_at = NULL WHERE number = ?",
                   (number,))
    lines = [f"{EDITABLE[c]}: {_shown(old)} -> {_shown(new)}" for c, (old, new) in
             changed.items()]
    extra: MessageExtra = {"entry": "edit", "changes": changed}
    add_message(tx, number, NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=author,
        body_text="Changed " + "; ".join(lines), extra=extra), now=now)
    return changed


def _shown(value: Any) -> str:
    return "(none)" if value in (None, "") else str(value)


def request_type_defaults(tx: WriteTx, code: str) -> tuple[str | None, list[str]]:
    """The default priority and the active default assignees of request type `code`;
    (None, []) for free text that names no type of the list."""
    row = tx.execute("SELECT default_priority FROM request_types WHERE code = ?",
                     (code,)).fetchone() if code else None
    if row is None:
        return None, []
    assignees = [r[0] for r in tx.execute(
        "SELECT e.email FROM request_type_assignees a JOIN employees e ON e.id = a.employee_id"
        " WHERE a.request_type = ? AND e.active = 1 ORDER BY e.email", (code,)).fetchall()]
    return row["default_priority"], assignees


def resolve_links(tx: WriteTx, customer_id: int, *, now: datetime,
                  contact_email: str | None = None, site_id: int | None = None,
                  equipment_serial: str | None = None,
                  given: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The interventions columns (contact_id, site_id, equipment_id) for the links named
    in `given`, each checked to belong to the customer; None clears one. A contact
    address the customer does not have yet becomes its new contact (an operator typed
    it); a machine brings its site unless a site is named too."""
    out: dict[str, Any] = {}
    if "contact_email" in given:
        out["contact_id"] = (None if not contact_email
                             else _contact_of(tx, customer_id, contact_email, now))
    if "equipment_serial" in given:
        out["equipment_id"] = None
        if equipment_serial:
            serial = equipment_serial.strip()
            row = tx.execute("SELECT id, site_id FROM equipment WHERE customer_id = ?"
                             " AND serial IN (?, ?) ORDER BY id LIMIT 1",
                             (customer_id, serial, serial.upper())).fetchone()
            if row is None:
                raise EditRefused(msg("equipment_serial: customer {customer} has no machine"
                                      " {serial}", customer=customer_id, serial=serial))
            out["equipment_id"] = row["id"]
            if "site_id" not in given and row["site_id"] is not None:
                out["site_id"] = row["site_id"]
    if "site_id" in given:
        out["site_id"] = site_id
        if site_id is not None:
            row = tx.execute("SELECT customer_id FROM sites WHERE id = ?",
                             (site_id,)).fetchone()
            if row is None or row["customer_id"] != customer_id:
                raise EditRefused(msg("site_id: site {site} is not a site of customer"
                                      " {customer}", site=site_id, customer=customer_id))
    return out


def _contact_of(tx: WriteTx, customer_id: int, email: str, now: datetime) -> int:
    email = email.strip().lower()
    row = tx.execute("SELECT id, customer_id FROM contacts WHERE email = ?",
                     (email,)).fetchone()
    if row is not None:
        if row["customer_id"] != customer_id:
            raise EditRefused(msg("contact_email: {email} is a contact of customer"
                                  " {customer}", email=email, customer=row["customer_id"]))
        return int(row["id"])
    contact_id: int = tx.execute(
        "INSERT INTO contacts (customer_id, name, email, verified, created_at)"
        " VALUES (?, '', ?, 1, ?) RETURNING id", (customer_id, email, iso(now))).fetchone()[0]
    return contact_id
