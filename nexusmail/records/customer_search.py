"""Finding customers: by part of their name, tax id, email or phone, or of a contact's.

A substring match of the typed text taken literally (LIKE's wildcards escaped), case
aside: PostgreSQL serves it from trigram indexes on lower() of those columns; SQLite
scans (bench/customer_search.py measures both). Case is folded for ASCII letters on
both; PostgreSQL also folds other letters (Ș, À), SQLite does not.
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


# Each `{}` is one column compared with the typed text. SQLite's LIKE already ignores
# ASCII case, and a bare column is three to four times faster there than lower() on
# both sides (a search at 100,000 customers scans them all). PostgreSQL compares lower()
# with lower(), and gathers the ids of each table apart (a UNION, not one OR across
# tables): each part is then one bitmap scan of the trigram indexes on those columns.
_MATCH = {
    "sqlite": (
        "({} OR {} OR {} OR {} OR {}"
        " OR c.id IN (SELECT customer_id FROM contacts WHERE {} OR {} OR {})"
        " OR c.id IN (SELECT customer_id FROM customer_domains WHERE {}))"),
    "postgresql": (
        "c.id IN (SELECT id FROM customers WHERE {} OR {} OR {} OR {} OR {}"
        " UNION SELECT customer_id FROM contacts WHERE {} OR {} OR {}"
        " UNION SELECT customer_id FROM customer_domains WHERE {})"),
}
_COLUMNS = ("name", "tax_id", "email", "phone", "work_phone", "name", "email", "phone",
            "domain")
_COMPARE = {"sqlite": "{} LIKE ? ESCAPE '\\'",
            "postgresql": "lower({}) LIKE lower(?) ESCAPE '\\'"}


async def search_customers(conn: ReadTx, q: str | None = None, *, limit: int = 50,
                           offset: int = 0, include_merged: bool = False,
                           owner: str | None = None) -> CustomerPage:
    """A page of customers by name (then id), those matching `q` when it is given;
    merged customers only when asked for; `owner`: only the customers they own."""
    where: list[str] = []
    params: list[Any] = []
    if owner is not None:
        where.append("c.owner = ?")
        params.append(owner.lower())
    if not include_merged:
        where.append("c.merged_into IS NULL")
    dialect = dialect_of(conn)
    if q and q.strip():
        store = "postgresql" if dialect == "postgresql" else "sqlite"
        columns = _COLUMNS if store == "postgresql" else [
            f"c.{c}" if n < 5 else c for n, c in enumerate(_COLUMNS)]
        where.append(_MATCH[store].format(*(_COMPARE[store].format(c) for c in columns)))
        params += ["%" + escape_like(q.strip()) + "%"] * len(_COLUMNS)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    # Byte order on both stores: PostgreSQL's locale order would sort "D'Amico" apart
    # from SQLite's.
    order = ('lower(c.name) COLLATE "C", c.id' if dialect == "postgresql"
             else "lower(c.name), c.id")
    rows = await conn.execute_fetchall(
        f"SELECT c.id FROM customers c{clause} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset])
    ids = [r["id"] for r in rows]
    if (ids and len(ids) < limit) or (not ids and not offset):
        total = offset + len(ids)  # the last page: no second scan to count them
    else:
        counted = await conn.execute_fetchall(
            "SELECT count(*) FROM customers c" + clause, params)  # noqa: S608
        total = int(next(iter(counted))[0])
    views = await customer_views(conn, ids)
    return {"items": [views[i] for i in ids if i in views],
            "total": total, "limit": limit, "offset": offset}


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
