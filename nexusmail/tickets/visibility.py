"""Which customers and interventions an operator limited to their own customers may see.

"Their own" means the intervention's customer has them as owner (customers.owner, the
operator's email in lower case). A case with no customer yet belongs to nobody, so a
limited operator does not see it: the dispatchers who sort the unknown senders do. A
customer's contacts, sites and machines are theirs with the customer.
"""

from __future__ import annotations

from datetime import datetime

from nexusmail.clock import iso
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.tickets.cases import NotFound

# The intervention a path's id leads to, for each kind of thing a route names by id.
_CASE_OF = {
    "intervention": "SELECT i.number FROM interventions i WHERE i.number = ?",
    "message": "SELECT m.intervention_number FROM messages m WHERE m.id = ?",
    "attachment": "SELECT m.intervention_number FROM attachments a"
                  " JOIN messages m ON m.id = a.message_id WHERE a.id = ?",
    "activity": "SELECT v.intervention_number FROM activities v WHERE v.id = ?",
}

# The customer a path's id leads to, for the customer and each record of theirs.
_CUSTOMER_OF = {
    "customer": "SELECT x.id FROM customers x WHERE x.id = ?",
    "contact": "SELECT x.customer_id FROM contacts x WHERE x.id = ?",
    "site": "SELECT x.customer_id FROM sites x WHERE x.id = ?",
    "equipment": "SELECT x.customer_id FROM equipment x WHERE x.id = ?",
}

# The SQL condition a list adds for a limited operator; one `?`: their email.
OWNED_CASE_CONDITION = (
    "i.customer_id IN (SELECT c.id FROM customers c WHERE c.owner = ?)"
)


async def may_see(conn: ReadTx, kind: str, ident: int, owner: str) -> bool:
    """Whether the customer `ident`, or the intervention behind `kind` `ident`, is
    owned by `owner`. False as well when the thing does not exist: the caller answers
    404 either way."""
    # Only the fixed fragments above are joined in; the values are bound parameters.
    if kind in _CUSTOMER_OF:
        return bool(list(await conn.execute_fetchall(
            "SELECT 1 FROM customers c WHERE c.id = (" + _CUSTOMER_OF[kind] + ")"  # noqa: S608
            " AND c.owner = ?", (ident, owner.lower()))))
    rows = list(await conn.execute_fetchall(
        "SELECT 1 FROM interventions i WHERE i.number = ("  # noqa: S608
        + _CASE_OF[kind] + ")"
        " AND " + OWNED_CASE_CONDITION,
        (ident, owner.lower()),
    ))
    return bool(rows)


class NotTheirs(NotFound):
    """A limited operator's new case landed on a customer of someone else's."""

    def __init__(self, customer_id: int) -> None:
        super().__init__(f"customer {customer_id} does not exist")
        self.customer_id = customer_id


def claim_new_case(tx: WriteTx, number: int, owner: str, *, now: datetime) -> None:
    """After a limited operator opened case `number` (in the same transaction): a
    customer this very request created (at `now`, with this one case) becomes theirs;
    a case of anyone else's customer raises NotFound, which undoes the whole request,
    as if that customer did not exist for them."""
    row = tx.execute(
        "SELECT c.id, c.owner, c.created_at,"
        " (SELECT count(*) FROM interventions j WHERE j.customer_id = c.id) AS cases"
        " FROM interventions i JOIN customers c ON c.id = i.customer_id"
        " WHERE i.number = ?", (number,)).fetchone()
    if row is not None and row["owner"] == owner.lower():
        return
    if row is not None and row["created_at"] == iso(now) and row["cases"] == 1:
        tx.execute("UPDATE customers SET owner = ? WHERE id = ?", (owner.lower(), row["id"]))
        tx.execute("UPDATE interventions SET owner = ? WHERE number = ?",
                   (owner.lower(), number))
        return
    customer_id = int(row["id"]) if row is not None else 0
    raise NotTheirs(customer_id)
