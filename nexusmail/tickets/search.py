"""The admin list's read side: filters, full-text search (FTS5) and keyset pagination.

Built to stay fast with 100,000 interventions and 1,000,000 messages:
no total count (it would scan every match), pages by `number` rather than OFFSET
(an OFFSET walks every skipped row), every filter answerable from an index
(migration 0005), and the assignees of a whole page read in one query.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, TypedDict

from nexusmail.storage.connections import ReadTx, dialect_of
from nexusmail.tickets import queries
from nexusmail.tickets.attention import Attention
from nexusmail.tickets.due_filter import DueFilter, due_clause
from nexusmail.tickets.models import Status
from nexusmail.tickets.queries import InterventionSummary
from nexusmail.tickets.search_indexer import MESSAGE_VECTOR_SQL
from nexusmail.tickets.visibility import OWNED_CASE_CONDITION

PAGE_SIZE = 50
MAX_QUERY_WORDS = 12
# A search looks at this many of the most recent matching messages (and subjects).
MAX_TEXT_MATCHES = 5000
# The cases not closed, as migration 0025's partial index names them (the same words,
# so that both stores see the index answers it).
UNCLOSED = "i.status IN ('open', 'on_hold', 'resolved')"
# Words are quoted for FTS5, so its operators (AND, NEAR, column:) stay plain text.
_WORD = re.compile(r"[^\s\"]+")


@dataclass(frozen=True)
class ListFilter:
    status: str | None = None
    employee_id: int | None = None
    customer: str = ""
    equipment: str = ""              # a machine's serial, as typed
    request_type: str = ""
    attention: Attention | None = None
    text: str = ""
    due: DueFilter | None = None     # overdue or due today (tickets.due_filter)
    new_mail_for: int | None = None  # an operator id: cases not closed with mail they
                                     # have not opened yet
    owner: str | None = None         # only cases of customers this operator owns


class AssigneeView(TypedDict):
    name: str
    email: str
    status: str


class ListRow(InterventionSummary):
    assignees: list[AssigneeView]


@dataclass(frozen=True)
class ListPage:
    rows: list[ListRow]
    older: str | None   # pass as `before` for the next page, None on the last one
    newer: str | None   # pass as `after` for the previous page, None on the first one


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression requiring every word of `text`; None when it has none.

    Each word becomes a quoted string, so nothing typed can be an FTS5 operator or a
    syntax error; the tokenizer then folds case and diacritics on both sides.
    """
    words = _WORD.findall(text)[:MAX_QUERY_WORDS]
    return " ".join(f'"{w}"' for w in words) or None


def _conditions(f: ListFilter, dialect: str = "sqlite", *, few_in_status: bool = False,
                ) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    postgresql = dialect == "postgresql"
    if f.status:
        # With a customer chosen, their few cases are the better way in than every
        # open (or closed) case: `+` keeps SQLite off the status index then (PostgreSQL's
        # planner needs no hint, and has no unary + on text).
        hint = "+" if f.customer.strip() and not postgresql else ""
        if few_in_status:
            # Few cases in this status (see _few_in_status): take them from the status
            # index and sort them, rather than walk the activity order looking for them.
            where.append("i.number IN (SELECT number FROM interventions WHERE status = ?)")
        else:
            where.append(f"{hint}i.status = ?")
        params.append(f.status)
    if f.owner is not None:
        where.append(OWNED_CASE_CONDITION)
        params.append(f.owner.lower())
    if f.employee_id is not None:
        where.append("i.number IN (SELECT intervention_number FROM assignments"
                     " WHERE employee_id = ?)")
        params.append(f.employee_id)
    if f.customer.strip():
        pattern = "%" + queries._escape_like(f.customer.strip()) + "%"
        # A customer matches by its own name or address or by any of its contacts';
        # one IN over customer ids lets the (customer_id, number) index drive.
        where.append(
            "i.customer_id IN (SELECT id FROM customers WHERE lower(name) LIKE lower(?)"
            " ESCAPE '\\' OR lower(email) LIKE lower(?) ESCAPE '\\' UNION SELECT customer_id"
            " FROM contacts WHERE lower(name) LIKE lower(?) ESCAPE '\\'"
            " OR lower(email) LIKE lower(?) ESCAPE '\\')")
        params += [pattern] * 4
    if f.equipment.strip():
        # As typed or in capitals (labels print serials so); equality, so the serial
        # index finds the machines and the equipment index their cases.
        where.append("i.equipment_id IN (SELECT id FROM equipment WHERE serial IN (?, ?))")
        params += [f.equipment.strip(), f.equipment.strip().upper()]
    if f.request_type.strip():
        where.append("lower(i.request_type) = lower(?)" if postgresql
                     else "i.request_type = ? COLLATE NOCASE")
        params.append(f.request_type.strip())
    where += _attention_conditions(f.attention)
    if f.new_mail_for is not None:
        # The same rule as operator_reads.is_new; cases not closed only (a closed
        # case's new mail is flagged or reopens it), walked in activity order in their
        # own index (see source()), so the first page stops after its rows.
        where += [UNCLOSED, "i.last_inbound_at IS NOT NULL",
                  "NOT EXISTS (SELECT 1 FROM operator_reads r WHERE r.operator_id = ?"
                  " AND r.intervention_number = i.number AND r.read_at > i.last_inbound_at)"]
        params.append(f.new_mail_for)
    if f.due is not None:
        clause, due_params = due_clause(f.due)
        where.append(clause)
        params += due_params
    if postgresql:
        words = " ".join(_WORD.findall(f.text)[:MAX_QUERY_WORDS])
        if words:
            # The same words FTS5 would need, through the text search configuration
            # that folds them alike (see migrations/postgresql/0005_admin.sql).
            # Messages not indexed yet (search_indexer.py) are read by their text, and
            # an indexed one waiting to be indexed again by its new text only.
            where.append(
                "(i.number IN (SELECT number FROM interventions WHERE search_vector @@"  # noqa: S608 (a constant)
                " plainto_tsquery('nexusmail_text', nexusmail_search_text(?))"
                " ORDER BY number DESC LIMIT ?) OR i.number IN (SELECT intervention_number"
                " FROM messages WHERE id IN (SELECT message_id FROM message_search"
                " WHERE search_vector @@ plainto_tsquery('nexusmail_text',"
                " nexusmail_search_text(?)) AND message_id NOT IN"
                " (SELECT message_id FROM message_search_backlog)"
                " ORDER BY message_id DESC LIMIT ?))"
                " OR i.number IN (SELECT m.intervention_number FROM message_search_backlog b"
                " JOIN messages m ON m.id = b.message_id WHERE m.direction <> 'out'"
                f" AND {MESSAGE_VECTOR_SQL} @@"
                " plainto_tsquery('nexusmail_text', nexusmail_search_text(?))))")
            params += [words, MAX_TEXT_MATCHES, words, MAX_TEXT_MATCHES, words]
        return where, params
    match = fts_query(f.text)
    if match:
        # Newest matches first, at most MAX_TEXT_MATCHES of each: FTS5 walks its doclist
        # by rowid without sorting, so a word found in a quarter of a million messages
        # costs the same as a rare one. Such a search lists the cases of its most recent
        # matches, which are what the newest-first pages show anyway.
        where.append(
            "(i.number IN (SELECT rowid FROM interventions_fts WHERE interventions_fts MATCH ?"
            " ORDER BY rowid DESC LIMIT ?) OR i.number IN (SELECT m.intervention_number"
            " FROM messages m WHERE m.id IN (SELECT rowid FROM messages_fts"
            " WHERE messages_fts MATCH ? ORDER BY rowid DESC LIMIT ?)))")
        params += [match, MAX_TEXT_MATCHES, match, MAX_TEXT_MATCHES]
    return where, params


def source(f: ListFilter, dialect: str) -> str:
    """The FROM of a list query (alias `i`). New mail for an operator walks the cases
    not closed in activity order (migration 0025's partial index, which holds every
    column the condition reads); SQLite is told so, as without statistics it would
    gather every case not closed from the status index and sort them (about 20 ms of
    CPU at 14,500 open cases, 0.1 ms this way)."""
    if f.new_mail_for is not None and dialect == "sqlite":
        return "interventions i INDEXED BY interventions_unclosed_activity"
    return "interventions i"


def _attention_conditions(attention: Attention | None) -> list[str]:
    # The same rules as attention.needs_attention, phrased so an index drives each.
    if attention is Attention.REJECTED:
        return ["i.status = 'open'",
                "i.number IN (SELECT intervention_number FROM assignments"
                " WHERE status = 'rejected')",
                "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.intervention_number ="
                " i.number AND a.status IN ('confirmed', 'pending'))"]
    if attention is Attention.UNCLEAR:
        return ["i.status = 'open'",
                "i.number IN (SELECT intervention_number FROM assignments"
                " WHERE status = 'unclear')"]
    if attention is Attention.UNVERIFIED:
        return ["i.number IN (SELECT intervention_number FROM messages"
                " WHERE kind = 'technician_reply' AND verified = 0)"]
    if attention is Attention.MAIL_AFTER_CLOSE:
        return ["i.status = 'closed'",
                "EXISTS (SELECT 1 FROM messages m WHERE m.intervention_number = i.number"
                " AND m.kind = 'customer_mail' AND m.created_at > i.closed_at)"]
    if attention is Attention.RESOLVED:
        return ["i.status = 'resolved'"]
    if attention is Attention.NOT_DONE:
        return ["i.status <> 'closed'",
                "i.number IN (SELECT intervention_number FROM assignments"
                " WHERE report = 'not_done' AND status = 'confirmed')"]
    if attention is Attention.HOURS_UNREAD:
        return ["i.number IN (SELECT intervention_number FROM activities WHERE verdict = 'done'"
                " AND work_minutes IS NULL AND superseded_by IS NULL)"]
    if attention is Attention.UNASSIGNED:
        return ["i.status = 'open'",
                "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.intervention_number ="
                " i.number)"]
    return []


# The admin list's orders: what moved last first (the default), newest number first, or
# by urgency: the open cases by resolution deadline, soonest (most overdue) first, then
# every other case (as the API's sort=due, which also reads the resolution deadline).
ORDERS = ("activity", "number", "due")
# Past every real deadline, so the cases without a running one come last. An instant
# of the same form as the deadlines, so the text comparison orders them as instants.
NO_DEADLINE = "9999-12-31T23:59:59+00:00"
_DUE_KEY = ("CASE WHEN i.status = 'open' AND i.resolution_due IS NOT NULL"
            f" THEN i.resolution_due ELSE '{NO_DEADLINE}' END")


def _cursor_keys(order: str, cursor: str | None) -> list[Any] | None:
    """The sort key values a page cursor names; None for a missing or garbled one."""
    if not cursor:
        return None
    if order == "number":
        return [int(cursor)] if cursor.isdigit() else None
    moment, _, number = cursor.rpartition(",")
    return [moment, int(number)] if moment and number.isdigit() else None


def _cursor(order: str, row: ListRow) -> str:
    if order == "number":
        return str(row["number"])
    if order == "due":
        running = row["status"] == Status.OPEN and row["resolution_due"] is not None
        return f"{row['resolution_due'] if running else NO_DEADLINE},{row['number']}"
    return f"{row['updated_at']},{row['number']}"


async def list_page(
    conn: ReadTx,
    f: ListFilter,
    *,
    before: str | int | None = None,
    after: str | int | None = None,
    limit: int = PAGE_SIZE,
    order: str = "number",
) -> ListPage:
    """A page of matching interventions in `order` (see ORDERS), latest first (soonest
    deadline first for `due`): the one past the `before` cursor, or just ahead of
    `after` (going back), or the first. Cursors are the `older`/`newer` of a page
    listed in the same order."""
    few = order == "activity" and bool(f.status) and await _few_in_status(conn, f.status)
    where, params = _conditions(f, dialect_of(conn), few_in_status=few)
    key, ranks = {
        "number": ("i.number", "i.number {0}"),
        "due": (f"({_DUE_KEY}, i.number)", f"{_DUE_KEY} {{0}}, i.number {{0}}"),
    }.get(order, ("(i.updated_at, i.number)", "i.updated_at {0}, i.number {0}"))
    after_keys = _cursor_keys(order, None if after is None else str(after))
    before_keys = _cursor_keys(order, None if before is None else str(before))
    marks = "?" if order == "number" else "(?, ?)"
    # Latest first walks the key down; soonest deadline first walks it up.
    onward, back = (">", "<") if order == "due" else ("<", ">")
    if after_keys is not None:
        where.append(f"{key} {back} {marks}")
        params += after_keys
    elif before_keys is not None:
        where.append(f"{key} {onward} {marks}")
        params += before_keys
    going_back = after_keys is not None
    direction = "ASC" if (order == "due") != going_back else "DESC"
    sort = ranks.format(direction)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    # The page's numbers first, then the columns of those alone: the summary columns
    # hold correlated subqueries, and a plan that gathers matches before sorting them
    # (an OR of two searches) must not compute them for every match.
    # Only fixed fragments are joined into the SQL; every value is a bound parameter.
    page_numbers = (f"SELECT i.number FROM {source(f, dialect_of(conn))}{clause}"  # noqa: S608
                    f" ORDER BY {sort} LIMIT ?")
    rows = list(await conn.execute_fetchall(
        f"SELECT {queries._INTERVENTION_COLUMNS} WHERE i.number IN ({page_numbers})"
        f" ORDER BY {sort}",
        [*params, limit + 1],
    ))
    more = len(rows) > limit
    rows = rows[:limit]
    if going_back:
        rows.reverse()
    summaries = [queries._summary(r) for r in rows]
    assignees = await _assignees(conn, [s["number"] for s in summaries])
    listed: list[ListRow] = [
        {**s, "assignees": assignees.get(s["number"], [])} for s in summaries
    ]
    if not listed:
        return ListPage([], None, None)
    first, last = _cursor(order, listed[0]), _cursor(order, listed[-1])
    if not going_back:
        older = last if more else None
        newer = first if before_keys is not None else None  # we came from a newer page
    else:
        older = last  # we came here from an older page
        newer = first if more else None
    return ListPage(listed, older, newer)


# A status with at most this many cases is listed in activity order by sorting them.
FEW_IN_STATUS = 1000


async def _few_in_status(conn: ReadTx, status: str | None) -> bool:
    """Whether `status` holds few cases, counted no further than FEW_IN_STATUS on the
    status index. In last-activity order the planner cannot tell (its statistics see
    four statuses, not how unevenly cases spread over them): walking the activity
    index finds a page of a common status at once but walks all 100,000 cases for an
    empty one, while sorting a status's cases is cheap only when they are few."""
    rows = await conn.execute_fetchall(
        "SELECT count(*) FROM (SELECT 1 FROM interventions WHERE status = ? LIMIT ?) AS s",
        (status, FEW_IN_STATUS + 1))
    return int(next(iter(rows))[0]) <= FEW_IN_STATUS


async def _assignees(
    conn: ReadTx, numbers: list[int]
) -> dict[int, list[AssigneeView]]:
    """Who is on each listed intervention: one query for the whole page."""
    if not numbers:
        return {}
    marks = ",".join("?" * len(numbers))
    rows = await conn.execute_fetchall(
        "SELECT a.intervention_number, e.name, e.email, a.status FROM assignments a"  # noqa: S608
        f" JOIN employees e ON e.id = a.employee_id WHERE a.intervention_number IN ({marks})"
        " ORDER BY a.id",
        numbers,
    )
    found: dict[int, list[AssigneeView]] = defaultdict(list)
    for r in rows:
        found[r[0]].append({"name": r[1], "email": r[2], "status": r[3]})
    return found


async def request_types(conn: ReadTx, limit: int = 100) -> list[str]:
    """Request types in use, for the filter's suggestions.

    A skip-scan: each step seeks the next distinct value in the type index, so this
    costs `limit` index seeks however many interventions there are (a plain DISTINCT
    would walk all 100,000 index entries on every list page).
    """
    if dialect_of(conn) == "postgresql":
        # One spelling per type, case aside, from the lower(request_type) index.
        rows = await conn.execute_fetchall(
            "SELECT min(request_type) FROM interventions WHERE request_type > ''"
            " GROUP BY lower(request_type) ORDER BY lower(request_type) LIMIT ?", (limit,))
        return [str(r[0]) for r in rows]
    rows = await conn.execute_fetchall(
        "WITH RECURSIVE types(v) AS ("
        " SELECT min(request_type COLLATE NOCASE) FROM interventions WHERE request_type > ''"
        " UNION ALL SELECT (SELECT min(request_type COLLATE NOCASE) FROM interventions"
        "  WHERE request_type COLLATE NOCASE > types.v) FROM types WHERE types.v IS NOT NULL"
        " LIMIT ?) SELECT v FROM types WHERE v IS NOT NULL",
        (limit,),
    )
    return [str(r[0]) for r in rows]
