"""Customers: create, edit, read, and their mail domains and owner.

A customer's `owner` is the owning operator's email (lower case). Setting one by hand
requires an active operator with that address; the configured default owner is written
as it is, so that it may name an operator who has not been created yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.records import fields
from nexusmail.records.fields import InvalidRecord
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import DbRow, ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.mail_domains import FreeMail

# The columns a caller may set, in the JSON's order; mail_domains lives in its own table.
EDITABLE = ("name", "tax_id", "address", "phone", "work_phone", "email", "language",
            "notes", "owner", "verified")
MAX_NAME_CHARS = 300


class CustomerView(TypedDict):
    id: int
    name: str
    tax_id: str | None
    address: str | None
    phone: str | None
    work_phone: str | None
    email: str | None
    language: str | None
    notes: str
    mail_domains: list[str]
    owner: str | None
    verified: bool
    merged_into: int | None     # set once merged: everything it had belongs to that one
    created_at: str


COLUMNS = ("id, name, tax_id, address, phone, work_phone, email, language, notes, owner,"
           " verified, merged_into, created_at")


def clean(values: Mapping[str, Any], *, tx: WriteTx | None = None) -> dict[str, Any]:
    """The given customer fields checked and in stored form (unknown keys refused). With
    `tx`, an owner must be an active operator; without, it is taken as written."""
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
        elif key == "tax_id":
            out[key] = fields.tax_id(value)
        elif key in ("address", "phone", "work_phone"):
            out[key] = fields.text_or_none(value)
        elif key == "email":
            out[key] = fields.email(value)
        elif key == "language":
            out[key] = fields.choice(value, fields.LANGUAGES, "language")
        elif key == "notes":
            out[key] = fields.text_or_none(value) or ""
        elif key == "owner":
            owner = fields.email(value, "owner")
            if owner is not None and tx is not None:
                check_owner(tx, owner)
            out[key] = owner
        elif key == "verified":
            if not isinstance(value, bool):
                raise InvalidRecord(msg("{field}: should be true or false",
                                        field="verified"))
            out[key] = 1 if value else 0
        elif key == "mail_domains":
            out[key] = fields.mail_domains(value)
        else:
            raise InvalidRecord(msg("{field}: unknown field", field=key))
    return out


def check_owner(tx: WriteTx, owner: str) -> None:
    row = tx.execute("SELECT active FROM operators WHERE email = ?", (owner,)).fetchone()
    if row is None:
        raise InvalidRecord(msg("{field}: no operator has the address {address}",
                                field="owner", address=owner))
    if not row[0]:
        raise InvalidRecord(msg("{field}: operator {address} is retired", field="owner",
                                address=owner))


def create_customer(tx: WriteTx, values: Mapping[str, Any], *, now: datetime,
                    default_owner: str | None = None) -> int:
    """Store a new customer (verified unless `verified` says otherwise); return its id.
    Without an owner of its own it gets `default_owner` (`[customers] default_owner`),
    as configured."""
    data = clean({"verified": True, **values}, tx=tx)
    if "name" not in data:
        raise InvalidRecord(msg("{field}: is required", field="name"))
    if data.get("owner") is None and default_owner:
        data["owner"] = default_owner
    domains = data.pop("mail_domains", [])
    columns = list(data)
    customer_id: int = tx.execute(
        f"INSERT INTO customers ({', '.join(columns)}, created_at, updated_at)"  # noqa: S608
        f" VALUES ({', '.join('?' for _ in columns)}, ?, ?) RETURNING id",
        [*data.values(), iso(now), iso(now)],
    ).fetchone()[0]
    set_domains(tx, customer_id, domains)
    return customer_id


def update_customer(tx: WriteTx, customer_id: int, changes: Mapping[str, Any], *,
                    now: datetime) -> None:
    """Change the fields given; `mail_domains` replaces the whole list."""
    require_active(tx, customer_id)
    data = clean(changes, tx=tx)
    domains = data.pop("mail_domains", None)
    if data:
        # Column names come from EDITABLE through clean(), never from the request.
        tx.execute(
            f"UPDATE customers SET {', '.join(f'{c} = ?' for c in data)}, updated_at = ?"  # noqa: S608
            " WHERE id = ?",
            [*data.values(), iso(now), customer_id],
        )
    else:
        tx.execute("UPDATE customers SET updated_at = ? WHERE id = ?", (iso(now), customer_id))
    if domains is not None:
        set_domains(tx, customer_id, domains)


def require_active(tx: WriteTx, customer_id: int) -> None:
    """NotFound for no such customer, Conflict for one merged into another."""
    row = tx.execute("SELECT merged_into FROM customers WHERE id = ?",
                     (customer_id,)).fetchone()
    if row is None:
        raise NotFound(msg("customer {id} does not exist", id=customer_id))
    if row[0] is not None:
        raise Conflict(msg("customer {id} was merged into customer {into}", id=customer_id,
                           into=row[0]))


def set_domains(tx: WriteTx, customer_id: int, domains: Sequence[str]) -> None:
    """Make `domains` the customer's mail domains. A domain is one customer's only: one
    held by another customer is a Conflict naming that customer."""
    wanted = [fields.mail_domain(d) for d in domains]
    # Held to the commit, in one order: two customers given one domain at once (two
    # daemons' operators) get one the domain and the other a Conflict, not an error.
    for domain in sorted(set(wanted)):
        xact_lock.hold(tx, "customer_domain", domain)
    for domain in wanted:
        # gmail.com names no one customer: mail from it is never matched by domain.
        if FreeMail().is_free(domain):
            raise InvalidRecord(msg("{field}: {domain} is a free-mail domain",
                                    field="mail_domains", domain=domain))
        row = tx.execute("SELECT customer_id FROM customer_domains WHERE domain = ?",
                         (domain,)).fetchone()
        if row is not None and row[0] != customer_id:
            raise Conflict(msg("mail_domains: {domain} is a domain of customer {customer}",
                               domain=domain, customer=row[0]))
    tx.execute("DELETE FROM customer_domains WHERE customer_id = ?", (customer_id,))
    tx.executemany(
        "INSERT INTO customer_domains (domain, customer_id) VALUES (?, ?)",
        [(d, customer_id) for d in wanted],
    )


def view(row: DbRow, domains: list[str]) -> CustomerView:
    return {
        "id": row["id"], "name": row["name"], "tax_id": row["tax_id"],
        "address": row["address"], "phone": row["phone"], "work_phone": row["work_phone"],
        "email": row["email"], "language": row["language"], "notes": row["notes"] or "",
        "mail_domains": domains, "owner": row["owner"], "verified": bool(row["verified"]),
        "merged_into": row["merged_into"], "created_at": row["created_at"],
    }


async def get_customer(conn: ReadTx, customer_id: int) -> CustomerView | None:
    found = await customer_views(conn, [customer_id])
    return found.get(customer_id)


async def customer_views(conn: ReadTx, ids: Iterable[int]) -> dict[int, CustomerView]:
    """The customers of `ids` by id, each with its domains, in two queries."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    marks = ", ".join("?" for _ in wanted)
    rows = await conn.execute_fetchall(
        f"SELECT {COLUMNS} FROM customers WHERE id IN ({marks})", wanted)  # noqa: S608
    domain_rows = await conn.execute_fetchall(
        f"SELECT customer_id, domain FROM customer_domains WHERE customer_id IN ({marks})",  # noqa: S608
        wanted)
    domains: dict[int, list[str]] = {}
    for d in domain_rows:
        domains.setdefault(d["customer_id"], []).append(d["domain"])
    # Sorted here: PostgreSQL's locale order would put rossi.eu before rossi-srl.it,
    # SQLite's byte order after.
    return {r["id"]: view(r, sorted(domains.get(r["id"], []))) for r in rows}
