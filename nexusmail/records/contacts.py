"""Contacts: the people at a customer who write or phone, with how they want to be
reached. An address is one contact's only, across all customers (mail from it must go
to one place)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.records import fields
from nexusmail.records.customers import require_active
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import INTEGRITY_ERRORS, DbRow, ReadTx, WriteTx
from nexusmail.tickets.cases import CONTACT_LOCK, Conflict, NotFound

EDITABLE = ("name", "email", "phone", "role", "preferred_channel", "language", "verified")
COLUMNS = "id, customer_id, name, email, phone, role, preferred_channel, language, verified"
MAX_NAME_CHARS = 300


class ContactView(TypedDict):
    id: int
    customer_id: int
    name: str
    email: str | None
    phone: str | None
    role: str | None
    preferred_channel: str | None     # email | phone
    language: str | None
    verified: bool


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == "name":
            name = fields.text_or_none(value) or ""
            if len(name) > MAX_NAME_CHARS:
                raise InvalidRecord(msg(
                    "{field}: is longer than {most} characters", field="name",
                    most=MAX_NAME_CHARS))
            out[key] = name
        elif key == "email":
            out[key] = fields.email(value)
        elif key in ("phone", "role"):
            out[key] = fields.text_or_none(value)
        elif key == "preferred_channel":
            out[key] = fields.choice(value, fields.CONTACT_CHANNELS, key)
        elif key == "language":
            out[key] = fields.choice(value, fields.LANGUAGES, key)
        elif key == "verified":
            if not isinstance(value, bool):
                raise InvalidRecord(msg("{field}: should be true or false",
                                        field="verified"))
            out[key] = 1 if value else 0
        else:
            raise InvalidRecord(msg("{field}: unknown field", field=key))
    return out


def add_contact(tx: WriteTx, customer_id: int, values: Mapping[str, Any], *,
                now: datetime) -> int:
    """A new contact of the customer (verified unless told otherwise); return its id."""
    require_active(tx, customer_id)
    data = clean({"verified": True, **values})
    if not (data.get("name") or data.get("email") or data.get("phone")):
        raise InvalidRecord(msg("{field}: a contact needs a name, an email or a phone",
                                field="name"))
    _check_email_free(tx, data.get("email"), None)
    columns = list(data)
    try:
        contact_id: int = tx.execute(
            f"INSERT INTO contacts (customer_id, {', '.join(columns)}, created_at)"  # noqa: S608
            f" VALUES (?, {', '.join('?' for _ in columns)}, ?) RETURNING id",
            [customer_id, *data.values(), iso(now)],
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("email: {email} is already a contact's",
                           email=data.get("email"))) from None
    return contact_id


def update_contact(tx: WriteTx, contact_id: int, changes: Mapping[str, Any]) -> None:
    row = tx.execute("SELECT customer_id FROM contacts WHERE id = ?", (contact_id,)).fetchone()
    if row is None:
        raise NotFound(msg("contact {id} does not exist", id=contact_id))
    require_active(tx, row[0])
    data = clean(changes)
    if not data:
        return
    if "email" in data:
        _check_email_free(tx, data["email"], contact_id)
    tx.execute(
        f"UPDATE contacts SET {', '.join(f'{c} = ?' for c in data)} WHERE id = ?",  # noqa: S608
        [*data.values(), contact_id],
    )


def _check_email_free(tx: WriteTx, email: str | None, contact_id: int | None) -> None:
    if email is None:
        return
    # Held to the commit: a mail of this address meanwhile finds the contact.
    xact_lock.hold(tx, CONTACT_LOCK, email)
    row = tx.execute("SELECT id, customer_id FROM contacts WHERE email = ?",
                     (email,)).fetchone()
    if row is not None and row[0] != contact_id:
        raise Conflict(msg("email: {email} is already a contact of customer {customer}",
                           email=email, customer=row[1]))


def view(row: DbRow) -> ContactView:
    return {
        "id": row["id"], "customer_id": row["customer_id"], "name": row["name"],
        "email": row["email"], "phone": row["phone"], "role": row["role"],
        "preferred_channel": row["preferred_channel"], "language": row["language"],
        "verified": bool(row["verified"]),
    }


async def list_contacts(conn: ReadTx, customer_id: int) -> list[ContactView]:
    rows = await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM contacts WHERE customer_id = ? ORDER BY id",  # noqa: S608
        (customer_id,))
    return [view(r) for r in rows]


async def get_contact(conn: ReadTx, contact_id: int) -> ContactView | None:
    rows = list(await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM contacts WHERE id = ?", (contact_id,)))  # noqa: S608
    return view(rows[0]) if rows else None
