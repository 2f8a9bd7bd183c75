"""Use cases that change interventions. Plain functions over the writer's connection.

Each runs inside `Store.write`, so everything one call changes (and every outbox row
it queues) commits together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import INTEGRITY_ERRORS, Cursor, WriteTx
from nexusmail.tickets.message_extra import MessageExtra, dump_extra
from nexusmail.tickets.models import Direction, MessageKind, Priority, Source, Status

# The lock a unit holds while it decides whether an address has a contact yet, so that
# two daemons do not both create one (storage.xact_lock; keyed on the address).
CONTACT_LOCK = "contact"
# The channel a case came by when its creator does not say: mail and schedules know it.
_CHANNEL_OF_SOURCE = {Source.EMAIL: "mail", Source.SCHEDULE: "schedule"}


class NotFound(LookupError):
    """The intervention, employee or customer named does not exist."""


class Conflict(ValueError):
    """The change contradicts the current state (e.g. closing a closed intervention)."""


@dataclass(frozen=True)
class CustomerRef:
    customer_id: int
    contact_id: int | None  # None: the customer's own address wrote, not a contact's
    name: str
    email: str
    language: str | None
    created: bool
    owner: str | None = None
    # How the address was found: contact | customer | domain | new
    matched_by: str = "contact"


@dataclass(frozen=True)
class CasePlan:
    """A case's contract and deadlines (tickets.sla_plan), worked out before its row
    is written, so the row is written once with them."""

    contract_id: int | None
    response_due: str | None
    resolution_due: str | None


@dataclass(frozen=True)
class NewIntervention:
    customer_id: int
    subject: str
    description: str
    source: Source
    contact_id: int | None = None
    request_type: str = ""
    priority: Priority = Priority.NORMAL
    desired_from: date | None = None
    desired_to: date | None = None
    related_number: int | None = None
    site_id: int | None = None
    equipment_id: int | None = None
    channel: str | None = None  # mail | phone | visit | web | schedule
    requested_at: str | None = None  # when the customer asked, as the operator states it
    owner: str | None = None
    # Its contract and deadlines, when worked out before it is made (tickets.sla_plan);
    # None: made unplanned, for the deadline sweep to plan.
    sla: CasePlan | None = None
    # Its first message is the customer's mail (or a technician's): new for operators.
    inbound_first: bool = False


@dataclass(frozen=True)
class StoredAttachment:
    filename: str
    content_type: str
    size: int
    sha256: str
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class NewMessage:
    kind: MessageKind
    direction: Direction
    subject: str = ""
    body_text: str = ""
    body_html: str | None = None
    # The mail.html.SANITIZER_VERSION that made body_html; None when it was not made
    # by the sanitizer (the page then sanitizes it when first shown).
    html_sanitizer: int | None = None
    author: str = ""
    from_addr: str = ""
    to_addrs: Sequence[str] = ()
    cc_addrs: Sequence[str] = ()
    message_id: str | None = None
    inbound_id: int | None = None
    verdict: str | None = None
    verified: bool = True
    extra: MessageExtra = field(default_factory=lambda: MessageExtra())
    attachments: Sequence[StoredAttachment] = ()


def find_or_create_customer(
    tx: WriteTx, *, email: str, name: str, now: datetime
) -> CustomerRef:
    """The customer an address belongs to; an unknown address becomes a new, unverified
    customer with one contact (an operator verifies or merges it later)."""
    email = email.strip().lower()
    xact_lock.hold(tx, CONTACT_LOCK, email)  # one new customer, even from two daemons
    row = tx.execute(
        "SELECT c.id AS contact_id, c.customer_id, cu.name, cu.language FROM contacts c"
        " JOIN customers cu ON cu.id = c.customer_id WHERE c.email = ?",
        (email,),
    ).fetchone()
    if row is not None:
        return CustomerRef(row["customer_id"], row["contact_id"], row["name"], email,
                           row["language"], created=False)
    display = name.strip() or email
    customer_id: int = tx.execute(
        "INSERT INTO customers (name, email, verified, created_at) VALUES (?, ?, 0, ?)"
        " RETURNING id",
        (display, email, iso(now)),
    ).fetchone()[0]
    contact_id: int = tx.execute(
        "INSERT INTO contacts (customer_id, name, email, verified, created_at)"
        " VALUES (?, ?, ?, 0, ?) RETURNING id",
        (customer_id, name.strip(), email, iso(now)),
    ).fetchone()[0]
    return CustomerRef(customer_id, contact_id, display, email, None, created=True)


def create_intervention(tx: WriteTx, new: NewIntervention, *, now: datetime) -> int:
    """Open an intervention; return its number."""
    sla = new.sla
    number: int = tx.execute(
        "INSERT INTO interventions (customer_id, contact_id, request_type, subject, description,"
        " priority, desired_from, desired_to, status, source, related_number, site_id,"
        " equipment_id, channel, requested_at, owner, created_at, updated_at,"
        " contract_id, response_due, resolution_due, sla_planned_at, last_inbound_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING number",
        (new.customer_id, new.contact_id, new.request_type, new.subject, new.description,
         new.priority, _date(new.desired_from), _date(new.desired_to), Status.OPEN, new.source,
         new.related_number, new.site_id, new.equipment_id,
         new.channel or _CHANNEL_OF_SOURCE.get(new.source), new.requested_at, new.owner,
         iso(now), iso(now),
         sla.contract_id if sla else None, sla.response_due if sla else None,
         sla.resolution_due if sla else None, iso(now) if sla else None,
         iso(now) if new.inbound_first else None),
    ).fetchone()[0]
    return number


def add_participants(tx: WriteTx, number: int, emails: Sequence[str]) -> None:
    """Record addresses that took part, so their tagged replies thread."""
    # Each address once: a mail's sender is often in its To or Cc too, and each row
    # given is one more statement for the store's one writer.
    tx.executemany(
        "INSERT INTO participants (intervention_number, email) VALUES (?, ?)"
        " ON CONFLICT DO NOTHING",
        [(number, e) for e in dict.fromkeys(e.lower() for e in emails if e)],
    )


def add_thread_refs(tx: WriteTx, number: int, message_ids: Sequence[str]) -> None:
    """Record Message-IDs that belong to the case, so that replies naming them thread;
    each once (a reply's In-Reply-To is mostly the last of its References too)."""
    tx.executemany(
        "INSERT INTO thread_refs (message_id, intervention_number) VALUES (?, ?)"
        " ON CONFLICT DO NOTHING",
        [(m, number) for m in dict.fromkeys(message_ids) if m],
    )


def add_message(
    tx: WriteTx, number: int, message: NewMessage, *, now: datetime, touch: bool = True
) -> int:
    """Append a message (with its attachment rows) to an intervention's thread; return
    its id. `touch=False`: the intervention was made at `now` in this transaction, with
    this message first (NewIntervention.inbound_first), so it already reads as touched."""
    message_row = _insert_message(tx, number, message, now=now).fetchone()[0]
    _add_attachments(tx, message_row, message)
    _after_message(tx, number, message, now=now, touch=touch)
    return int(message_row)


def append_message(
    tx: WriteTx, number: int, message: NewMessage, *, now: datetime, touch: bool = True
) -> None:
    """`add_message` for a caller that needs no id back: the new row's id is read only
    when attachment rows name it (on PostgreSQL a read is a round trip the one writer
    waits for, and most mail comes without attachments)."""
    inserted = _insert_message(tx, number, message, now=now)
    if message.attachments:
        _add_attachments(tx, inserted.fetchone()[0], message)
    _after_message(tx, number, message, now=now, touch=touch)


def _insert_message(tx: WriteTx, number: int, message: NewMessage, *, now: datetime
                    ) -> Cursor:
    return tx.execute(
        "INSERT INTO messages (intervention_number, kind, direction, author, from_addr, to_addrs,"
        " cc_addrs, subject, body_text, body_html, html_sanitizer, message_id, inbound_id,"
        " verdict, verified, extra, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " RETURNING id",
        (number, message.kind, message.direction, message.author, message.from_addr,
         json.dumps(list(message.to_addrs)), json.dumps(list(message.cc_addrs)),
         message.subject, message.body_text, message.body_html, message.html_sanitizer,
         message.message_id,
         message.inbound_id, message.verdict, int(message.verified),
         dump_extra(message.extra), iso(now)),
    )


def _add_attachments(tx: WriteTx, message_row: int, message: NewMessage) -> None:
    tx.executemany(
        "INSERT INTO attachments (message_id, filename, content_type, size, sha256, content_id,"
        " inline) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(message_row, a.filename, a.content_type, a.size, a.sha256, a.content_id, int(a.inline))
         for a in message.attachments],
    )


def _after_message(tx: WriteTx, number: int, message: NewMessage, *, now: datetime,
                   touch: bool) -> None:
    """What a new thread message changes beside its row: its thread reference, and the
    intervention's touch times."""
    if message.message_id:
        add_thread_refs(tx, number, [message.message_id])
    if not touch:
        return
    if message.direction == Direction.IN:
        # The customer or a technician wrote: new for every operator who looked before.
        tx.execute("UPDATE interventions SET updated_at = ?, last_inbound_at = ?"
                   " WHERE number = ?", (iso(now), iso(now), number))
    else:
        tx.execute("UPDATE interventions SET updated_at = ? WHERE number = ?",
                   (iso(now), number))


def intervention_status(tx: WriteTx, number: int) -> Status:
    row = tx.execute("SELECT status FROM interventions WHERE number = ?", (number,)).fetchone()
    if row is None:
        raise NotFound(msg("intervention {number} does not exist", number=number))
    return Status(row["status"])


def close_intervention(
    tx: WriteTx, number: int, *, now: datetime, author: str, note: str = "",
    reason: str = "",
) -> None:
    """Mark an intervention finished, with a status-change entry on its thread; the
    `reason` (one of [tickets] close_reasons on the page, any text by the API) is kept
    in status_reason for reports."""
    if intervention_status(tx, number) is Status.CLOSED:
        raise Conflict(msg("intervention {number} is already closed", number=number))
    # Guarded: of two closings at once (two daemons' operators) one writes the entry.
    closed = tx.execute(
        "UPDATE interventions SET status = ?, status_reason = ?, closed_at = ?, updated_at = ?"
        " WHERE number = ? AND status <> ?",
        (Status.CLOSED, reason.strip(), iso(now), iso(now), number, Status.CLOSED),
    ).rowcount
    if closed != 1:
        raise Conflict(msg("intervention {number} is already closed", number=number))
    extra: MessageExtra = {"status": Status.CLOSED}
    if reason.strip():
        extra["reason"] = reason.strip()
    add_message(
        tx, number,
        NewMessage(kind=MessageKind.STATUS_CHANGE, direction=Direction.INTERNAL, author=author,
                   body_text=note, extra=extra),
        now=now,
    )


def reopen_intervention(
    tx: WriteTx, number: int, *, now: datetime, author: str, note: str = ""
) -> None:
    """Open a closed, resolved or held intervention again; Conflict when it is open."""
    intervention_status(tx, number)  # NotFound
    if not reopen_if_not_open(tx, number, now=now, author=author, note=note):
        raise Conflict(msg("intervention {number} is already open", number=number))


def reopen_if_not_open(
    tx: WriteTx, number: int, *, now: datetime, author: str, note: str = ""
) -> bool:
    """Reopen the intervention with an entry on its thread; False when it is open
    already (another writer reopened it meanwhile: one entry, not two)."""
    reopened = tx.execute(
        "UPDATE interventions SET status = ?, status_reason = '', closed_at = NULL,"
        " updated_at = ? WHERE number = ? AND status <> ?",
        (Status.OPEN, iso(now), number, Status.OPEN),
    ).rowcount
    if reopened != 1:
        return False
    add_message(
        tx, number,
        NewMessage(kind=MessageKind.STATUS_CHANGE, direction=Direction.INTERNAL, author=author,
                   body_text=note, extra={"status": Status.OPEN}),
        now=now,
    )
    return True


def add_employee(
    tx: WriteTx, *, email: str, name: str, language: str, now: datetime
) -> int:
    """Add an employee (technician); an existing address raises Conflict."""
    try:
        employee_id: int = tx.execute(
            "INSERT INTO employees (email, name, language, created_at) VALUES (?, ?, ?, ?)"
            " RETURNING id",
            (email.strip().lower(), name.strip(), language, iso(now)),
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("an employee with address {email} exists already",
                           email=email)) from None
    return employee_id


def set_employee_active(tx: WriteTx, email: str, *, active: bool) -> int:
    """Retire an employee (no new assignments, so no assignment mail) or bring them
    back; their id. NotFound for an unknown address."""
    email = email.strip().lower()
    row = tx.execute("UPDATE employees SET active = ? WHERE email = ? RETURNING id",
                     (int(active), email)).fetchone()
    if row is None:
        raise NotFound(msg("no employee with address {email}", email=email))
    return int(row[0])


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None
