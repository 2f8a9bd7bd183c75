"""Finding customers: by part of their name, tax id, email or phone, or of a contact's,
or of a mail domain.

A substring of one of those values, the typed text taken literally, case aside. Each
customer not merged away has one row in `customer_search` holding those values one per
line in lower case, kept by triggers (migration 0023). SQLite reads that narrow table
(its lower() and this module fold ASCII letters only); PostgreSQL serves `LIKE '%...%'`
from a trigram index on it and folds every letter (Ș, À).

The page is in name order. When few customers match, their ids are gathered and sorted;
when many do (a word most names hold), the name index is walked and each customer
checked, which stops at the page's end instead of sorting every match.
bench/customer_search.py measures both stores.
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from nexusmail.records.customers import CustomerView, customer_views
from nexusmail.storage.connections import ReadTx, dialect_of

MAX_QUERY_CHARS = 200
# Above this many matches a search counts as broad (SQLite): walking the name index
# then visits at most about customers / BROAD_MATCHES rows per row of the page.
BROAD_MATCHES = 1000
# What separates the values in a customer's row: never part of a search.
SEPARATOR = "\n"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class CustomerPage(TypedDict):
    items: list[CustomerView]
    total: int
    limit: int
    offset: int


async def search_customers(conn: ReadTx, q: str | None = None, *, limit: int = 50,
                           offset: int = 0, owner: str | None = None) -> CustomerPage:
    """A page of customers by name (then id), those matching `q` when it is given;
    `owner`: only the customers they own. Merged customers are never listed."""
    where = ["c.merged_into IS NULL"]
    params: list[Any] = []
    if owner is not None:
        where.append("c.owner = ?")
        params.append(owner.lower())
    text = (q or "").strip()
    counted_by: tuple[str, list[Any]] | None = None
    if text:
        if SEPARATOR in text:  # no single value holds a line break: nothing matches
            return {"items": [], "total": 0, "limit": limit, "offset": offset}
        if dialect_of(conn) == "postgresql":
            condition, value, counted_by = _postgresql_match(text, owner)
        else:
            condition, value, counted_by = await _sqlite_match(conn, text, owner)
        where.append(condition)
        params.append(value)
    clause = " WHERE " + " AND ".join(where)
    # Byte order on both stores: PostgreSQL's locale order would sort "D'Amico" apart
    # from SQLite's. Each order is an index of migration 0023.
    order = ('lower(c.name) COLLATE "C", c.id' if dialect_of(conn) == "postgresql"
             else "lower(c.name), c.id")
    rows = await conn.execute_fetchall(
        f"SELECT c.id FROM customers c{clause} ORDER BY {order} LIMIT ? OFFSET ?",  # noqa: S608
        [*params, limit, offset])
    ids = [r["id"] for r in rows]
    if (ids and len(ids) < limit) or (not ids and not offset):
        total = offset + len(ids)  # the last page: no second pass to count them
    else:
        count_sql, count_params = counted_by or (
            "SELECT count(*) FROM customers c" + clause, params)  # noqa: S608
        counted = await conn.execute_fetchall(count_sql, count_params)
        total = int(next(iter(counted))[0])
    views = await customer_views(conn, ids)
    return {"items": [views[i] for i in ids if i in views],
            "total": total, "limit": limit, "offset": offset}


async def _sqlite_match(conn: ReadTx, text: str, owner: str | None
                        ) -> tuple[str, str, tuple[str, list[Any]] | None]:
    """The condition on `c` for `text`, its parameter, and a cheaper count if any."""
    folded = text.translate(_ASCII_LOWER)
    found = await conn.execute_fetchall(
        "SELECT customer_id FROM customer_search WHERE instr(body, ?) > 0 LIMIT ?",
        [folded, BROAD_MATCHES + 1])
    ids = [r[0] for r in found]
    if len(ids) <= BROAD_MATCHES:  # every match: the page sorts these few
        return "c.id IN (SELECT value FROM json_each(?))", json.dumps(ids), None
    # Broad: walk the name index, each customer checked by its row. Every row of the
    # search table is a customer not merged away: without an owner, count those.
    count = None
    if owner is None:
        count = ("SELECT count(*) FROM customer_search WHERE instr(body, ?) > 0", [folded])
    return ("EXISTS (SELECT 1 FROM customer_search s WHERE s.customer_id = c.id"
            " AND instr(s.body, ?) > 0)", folded, count)


def _postgresql_match(text: str, owner: str | None
                      ) -> tuple[str, str, tuple[str, list[Any]] | None]:
    """PostgreSQL's planner chooses between the trigram index and the name walk from its
    statistics; without an owner the count reads only the search table."""
    pattern = "%" + escape_like(text) + "%"
    count = None
    if owner is None:
        count = ("SELECT count(*) FROM customer_search WHERE body LIKE lower(?)"
                 " ESCAPE '\\'", [pattern])
    return ("c.id IN (SELECT customer_id FROM customer_search"
            " WHERE body LIKE lower(?) ESCAPE '\\')", pattern, count)


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
