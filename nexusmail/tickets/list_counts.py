"""How many cases each of the admin list's quick filters holds, for the counts shown
next to them: the working statuses, each reason to need an operator, and the cases
with mail this operator has not opened yet.

One statement of scalar subqueries, each answered from an index (the status index,
the assignments and messages indexes the attention filters already use, the
operator's read marks by primary key). Closed cases are not counted: they are the
archive, the bulk of the table, and counting them would walk most of it on every list
page. Each count stops past COUNT_CAP. Resolved cases are counted once, as a status.
The counts use the list's own filter conditions, so a count and the page its link
opens agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nexusmail.storage.connections import ReadTx, dialect_of
from nexusmail.tickets import search
from nexusmail.tickets.attention import Attention
from nexusmail.tickets.models import Status

# The statuses counted: the cases still being worked on.
COUNTED_STATUSES = (Status.OPEN, Status.ON_HOLD, Status.RESOLVED)
# The reasons counted: those whose condition starts from a narrow index range. Mail
# after close would visit every closed case, a report of work not done every confirmed
# assignment, unread hours every activity: their filters still work, uncounted.
COUNTED_ATTENTION = (Attention.UNASSIGNED, Attention.REJECTED, Attention.UNCLEAR,
                     Attention.UNVERIFIED)
# Beyond this a count shows as "1000+": the exact figure would cost a walk of every
# matching case on every list page, and says nothing more to whoever reads it.
COUNT_CAP = 1000


@dataclass(frozen=True)
class ListCounts:
    statuses: dict[str, int] = field(default_factory=dict)    # status -> cases
    attention: dict[str, int] = field(default_factory=dict)   # Attention value -> cases
    new_mail: int = 0      # cases not closed with mail the operator has not opened
    cap: int = 0           # a figure above this means "more than cap"


async def list_counts(conn: ReadTx, operator_id: int, owner: str | None = None, *,
                      cap: int = COUNT_CAP) -> ListCounts:
    """The counts for `operator_id`'s list, in one query; `owner`: only cases of
    customers that operator owns (an operator limited to their own customers). A
    figure above `cap` means more than `cap` (counting stopped there)."""
    dialect = dialect_of(conn)
    parts: list[str] = []
    params: list[Any] = []

    def count(flt: search.ListFilter) -> None:
        where, where_params = search._conditions(flt, dialect)
        clause = " AND ".join(where)
        # Counting stops past the cap: each count then costs at most that many index
        # entries, however many open cases a large firm has.
        parts.append("(SELECT count(*) FROM (SELECT 1 FROM"  # noqa: S608
                     f" {search.source(flt, dialect)} WHERE {clause} LIMIT ?) AS capped)")
        params.extend([*where_params, cap + 1])

    for status in COUNTED_STATUSES:
        count(search.ListFilter(status=status.value, owner=owner))
    for reason in COUNTED_ATTENTION:
        count(search.ListFilter(attention=reason, owner=owner))
    count(search.ListFilter(new_mail_for=operator_id, owner=owner))
    # Only the fixed fragments above are joined into the SQL; values are parameters.
    row = next(iter(await conn.execute_fetchall("SELECT " + ", ".join(parts), params)))
    figures = [int(v) for v in row]
    n = len(COUNTED_STATUSES)
    return ListCounts(
        statuses={s.value: figures[i] for i, s in enumerate(COUNTED_STATUSES)},
        attention={a.value: figures[n + i] for i, a in enumerate(COUNTED_ATTENTION)},
        new_mail=figures[-1],
        cap=cap,
    )
