"""Who wrote: the customer and contact an inbound request belongs to, and the machine
it is about.

In order: an address we know as a contact's, then as a customer's own; then the
sender's mail domain, when it is one of a customer's (a new person at a known firm
becomes a new, unverified contact of it; never through free-mail domains); else a
new unverified customer, owned by the configured default owner, as before. A serial of
that customer's machines written in the subject or body links the machine and its site.

Every lookup is indexed: the contact's or customer's address (one query), the domain
(all the sender's parent domains in one IN list), the serials (the mail's candidate
tokens, found before the writer, in one IN list).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.storage import xact_lock
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import CONTACT_LOCK, CustomerRef
from nexusmail.tickets.mail_domains import domain_of, free_mail_with, lookup_domains
from nexusmail.tickets.serials import lookup_forms, serial_key

log = structlog.get_logger(__name__)


def match_sender(tx: WriteTx, *, email: str, name: str, now: datetime,
                 settings: Settings) -> CustomerRef:
    """The customer (and contact) `email` belongs to, created when nobody knows it."""
    return ask_match_sender(tx, email=email, name=name, now=now, settings=settings)()


def ask_match_sender(tx: WriteTx, *, email: str, name: str, now: datetime,
                     settings: Settings) -> Callable[[], CustomerRef]:
    """`match_sender`, its lookup asked now and read (and a customer or contact made,
    when nobody knows the address) when the returned function is called: on PostgreSQL
    the lookup's answer comes back with another read of the unit's rather than in a
    round trip of its own. The lock on the address is held from here on."""
    email = email.strip().lower()
    # Two daemons given two mails of one new sender at once must make one customer.
    xact_lock.hold(tx, CONTACT_LOCK, email)
    # A contact's address first, else a customer's own, in one indexed query each side.
    lookup = tx.execute(
        "SELECT 0 AS rank, c.id AS contact_id, cu.id AS customer_id, cu.name, cu.language,"
        " cu.owner FROM contacts c JOIN customers cu ON cu.id = c.customer_id"
        " WHERE c.email = ?"
        " UNION ALL SELECT 1, NULL, id, name, language, owner FROM customers"
        " WHERE email = ? AND merged_into IS NULL ORDER BY 1, 3 LIMIT 1",
        (email, email),
    )

    def answer() -> CustomerRef:
        row = lookup.fetchone()
        if row is not None:
            return CustomerRef(row["customer_id"], row["contact_id"], row["name"], email,
                               row["language"], created=False, owner=row["owner"],
                               matched_by="contact" if row["rank"] == 0 else "customer")
        by_domain = _customer_of_domain(tx, email, settings)
        if by_domain is not None:
            return _new_contact(tx, by_domain, email=email, name=name, now=now)
        return _new_customer(tx, email=email, name=name, now=now,
                             owner=settings.customers.default_owner or None)
    return answer


def _customer_of_domain(tx: WriteTx, email: str, settings: Settings) -> CustomerRef | None:
    names = lookup_domains(domain_of(email),
                           free_mail_with(settings.customers.free_mail_domains))
    if not names:
        return None
    marks = ", ".join("?" for _ in names)
    rows = tx.execute(
        f"SELECT d.domain, cu.id, cu.name, cu.language, cu.owner FROM customer_domains d"  # noqa: S608
        f" JOIN customers cu ON cu.id = d.customer_id"
        f" WHERE d.domain IN ({marks}) AND cu.merged_into IS NULL",
        names,
    ).fetchall()
    if not rows:
        return None
    # The most specific domain wins: mail.rossi.it's owner before rossi.it's.
    best = min(rows, key=lambda r: names.index(r["domain"]))
    return CustomerRef(best["id"], None, best["name"], email, best["language"],
                       created=False, owner=best["owner"], matched_by="domain")


def _new_contact(tx: WriteTx, customer: CustomerRef, *, email: str, name: str,
                 now: datetime) -> CustomerRef:
    contact_id: int = tx.execute(
        "INSERT INTO contacts (customer_id, name, email, verified, created_at)"
        " VALUES (?, ?, ?, 0, ?) RETURNING id",
        (customer.customer_id, name.strip(), email, iso(now)),
    ).fetchone()[0]
    log.info("customer.new_contact_by_domain", customer=customer.customer_id,
             contact=contact_id)
    return CustomerRef(customer.customer_id, contact_id, customer.name, email,
                       customer.language, created=False, owner=customer.owner,
                       matched_by="domain")


def _new_customer(tx: WriteTx, *, email: str, name: str, now: datetime,
                  owner: str | None) -> CustomerRef:
    display = name.strip() or email
    customer_id: int = tx.execute(
        "INSERT INTO customers (name, email, owner, verified, created_at, updated_at)"
        " VALUES (?, ?, ?, 0, ?, ?) RETURNING id",
        (display, email, owner, iso(now), iso(now)),
    ).fetchone()[0]
    contact_id: int = tx.execute(
        "INSERT INTO contacts (customer_id, name, email, verified, created_at)"
        " VALUES (?, ?, ?, 0, ?) RETURNING id",
        (customer_id, name.strip(), email, iso(now)),
    ).fetchone()[0]
    return CustomerRef(customer_id, contact_id, display, email, None, created=True,
                       owner=owner, matched_by="new")


def link_equipment(tx: WriteTx, number: int, customer_id: int,
                   candidates: Sequence[str]) -> int | None:
    """Link intervention `number` to the first of the customer's machines whose serial
    is among `candidates` (tokens of the mail, in order), and to its site; return the
    machine's id, None when no serial matched."""
    if not candidates:
        return None
    forms = lookup_forms(candidates)
    marks = ", ".join("?" for _ in forms)
    rows = tx.execute(
        f"SELECT id, serial, site_id FROM equipment WHERE customer_id = ?"  # noqa: S608
        f" AND serial IN ({marks})",
        (customer_id, *forms),
    ).fetchall()
    if not rows:
        return None
    order = {serial_key(token): n for n, token in enumerate(candidates)}
    first = min(rows, key=lambda r: (order.get(serial_key(r["serial"]), len(order)), r["id"]))
    tx.execute("UPDATE interventions SET equipment_id = ?, site_id = ? WHERE number = ?",
               (first["id"], first["site_id"], number))
    return int(first["id"])
