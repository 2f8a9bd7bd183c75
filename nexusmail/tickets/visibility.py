"""Which customers and interventions an operator limited to their own customers may see.

"Their own" means the intervention's customer has them as owner (customers.owner, the
operator's email in lower case). A case with no customer yet belongs to nobody, so a
limited operator does not see it: the dispatchers who sort the unknown senders do.
"""

from __future__ import annotations

from nexusmail.storage.connections import ReadTx

# The intervention a path's id leads to, for each kind of thing a route names by id.
_CASE_OF = {
    "intervention": "SELECT i.number FROM interventions i WHERE i.number = ?",
    "message": "SELECT m.intervention_number FROM messages m WHERE m.id = ?",
    "attachment": "SELECT m.intervention_number FROM attachments a"
                  " JOIN messages m ON m.id = a.message_id WHERE a.id = ?",
    "activity": "SELECT v.intervention_number FROM activities v WHERE v.id = ?",
}

# The SQL condition a list adds for a limited operator; one `?`: their email.
OWNED_CASE_CONDITION = (
    "i.customer_id IN (SELECT c.id FROM customers c WHERE c.owner = ?)"
)


async def may_see(conn: ReadTx, kind: str, ident: int, owner: str) -> bool:
    """Whether the customer `ident`, or the intervention behind `kind` `ident`, is
    owned by `owner`. False as well when the thing does not exist: the caller answers
    404 either way."""
    if kind == "customer":
        return bool(list(await conn.execute_fetchall(
            "SELECT 1 FROM customers c WHERE c.id = ? AND c.owner = ?",
            (ident, owner.lower()))))
    # Only the fixed fragments above are joined in; the values are bound parameters.
    rows = list(await conn.execute_fetchall(
        "SELECT 1 FROM interventions i WHERE i.number = ("  # noqa: S608
        + _CASE_OF[kind] + ")"
        " AND " + OWNED_CASE_CONDITION,
        (ident, owner.lower()),
    ))
    return bool(rows)
