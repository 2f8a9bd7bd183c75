"""Finding customers: by part of their name, tax id, email or phone, or of a contact's.

The same SQL on both stores: `lower(column) LIKE lower(?)`, the typed text taken
literally (LIKE's wildcards escaped). PostgreSQL serves it from trigram indexes on those
lower() expressions; SQLite scans, which at a hundred thousand customers is still a few
tens of milliseconds. Case is folded for ASCII letters on both; PostgreSQL also folds
other letters (Ș, À), SQLite does not.
"""

from __future__ import annotations

from typing import Any, TypedDict

from nexusmail.records.customers import CustomerView, customer_views
from nexusmail.storage.connections import ReadTx, dialect_of

MAX_QUERY_CHARS = 200


class CustomerPage(TypedDict):
    items: list[CustomerView]
    total: int
    limit: int
    offset: int


_MATCH = (
    "(lower(c.name) LIKE lower(?) ESCAPE '\\' OR lower(c.tax_id) LIKE lower(?) ESCAPE '\\'"
    " OR lower(c.email) LIKE lower(?) ESCAPE '\\' OR lower(c.phone) LIKE lower(?) ESCAPE '\\'"
    " OR lower(c.work_phone) LIKE lower(?) ESCAPE '\\'"
    " OR c.id IN (SELECT customer_id FROM contacts WHERE lower(name) LIKE lower(?) ESCAPE '\\'"
    "   OR lower(email) LIKE lower(?) ESCAPE '\\' OR lower(phone) LIKE lower(?) ESCAPE '\\')"
    " OR c.id IN (SELECT customer_id FROM customer_domains WHERE domain LIKE lower(?)"
    "   ESCAPE '\\'))"
)
_MATCH_PARAMS = 9


async def search_customers(conn: ReadTx, q: str | None = None, *, limit: int = 50,
                           offset: int = 0, include_merged: bool = False) -> CustomerPage:
    """A page of customers by name (then id), those matching `q` when it is given;
    merged customers only when asked for."""
    where: list[str] = []
    params: list[Any] = []
    if not include_merged:
        where.append("c.merged_into IS NULL")
    if q and q.strip():
        where.append(_MATCH)
        params += ["%" + escape_like(q.strip()) + "%"] * _MATCH_PARAMS
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    # Byte order on both stores: PostgreSQL's locale order would sort "D'Amico" apart
    # from SQLite's.
    order = ('lower(c.name) COLLATE "C", c.id' if dialect_of(conn) == "postgresql"
             else "lower(c.name), c.id")
    total = await conn.execute_fetchall(
        "SELECT count(*) FROM customers c" + clause, params)  # noqa: S608
    rows = await conn.execute_fetchall(
        f"SELECT c.id FROM customers c{clause} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset])
    ids = [r["id"] for r in rows]
    views = await customer_views(conn, ids)
    return {"items": [views[i] for i in ids if i in views],
            "total": int(next(iter(total))[0]), "limit": limit, "offset": offset}


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
