"""The read side: what the API and the admin pages show, as plain JSON-ready dicts.

Every function takes a read connection from `Store.read()` (rows addressable by
column name) and never writes. A thread is loaded in a fixed number of queries
(intervention, assignments, messages, attachments, activities), whatever its length:
no query per message.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from nexusmail.storage.connections import ReadTx
from nexusmail.tickets.activity_queries import ActivityView, activities_of
from nexusmail.tickets.attention import needs_attention
from nexusmail.tickets.due_filter import DueFilter, due_clause
from nexusmail.tickets.message_extra import MessageExtra, load_extra
from nexusmail.tickets.models import AssignmentStatus, MessageKind, Status
from nexusmail.tickets.sequence_queries import SequenceRunView, sequence_of
from nexusmail.tickets.visibility import OWNED_CASE_CONDITION


class CustomerView(TypedDict):
    name: str
    email: str


class AttachmentView(TypedDict):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


# "from" is a keyword, hence the functional form.
MessageView = TypedDict(
    "MessageView",
    {
        "id": int,
        "kind": str,
        "direction": str,
        "from": str,
        "to": list[str],
        "cc": list[str],
        "author": str,
        "subject": str,
        "body_text": str,
        "verdict": str | None,
        "verified": bool,
        "extra": MessageExtra,
        "created_at": str,
        "attachments": list[AttachmentView],
        # Technician replies read as work reports: exact hours (minutes / 60) or None.
        "hours": NotRequired[float | None],
        "travel_hours": NotRequired[float | None],
    },
)


class AssignmentView(TypedDict):
    id: int
    employee_email: str
    employee_name: str
    status: AssignmentStatus
    decided_at: str | None
    reason: str
    team: str | None           # the team it was assigned through, if any


class InterventionSummary(TypedDict):
    number: int
    status: str
    subject: str
    request_type: str
    priority: str
    desired_from: str | None
    desired_to: str | None
    source: str
    related_number: int | None
    customer: CustomerView
    created_at: str
    updated_at: str
    closed_at: str | None
    last_activity_at: str            # the last message of any kind (the list's order)
    last_inbound_at: str | None      # when the customer or a technician last wrote
    needs_attention: list[str]
    response_due: str | None       # UTC ISO 8601; None: no such deadline
    resolution_due: str | None


class InterventionDetail(InterventionSummary):
    description: str
    assignments: list[AssignmentView]
    messages: list[MessageView]
    activities: list[ActivityView]
    notify_customer_on_resolve: bool | None   # None: as [reports] customer_closing_mail
    sequence: SequenceRunView | None          # the action sequence run on it, if any


class InterventionPage(TypedDict):
    items: list[InterventionSummary]
    total: int
    limit: int
    offset: int


class StoredAttachmentView(AttachmentView):
    message_id: int


class EmployeeView(TypedDict):
    id: int
    email: str
    name: str
    language: str
    active: bool
    created_at: str


class InboundView(TypedDict):
    id: int
    raw_sha256: str
    size: int
    message_id: str | None
    sender: str
    envelope_from: str
    envelope_to: list[str]
    source: str
    subject: str
    outcome: str
    reason: str
    intervention_number: int | None
    received_at: str


_INBOUND_COLUMNS = (
    "id, raw_sha256, size, message_id, sender, envelope_from, envelope_to, source,"
    " subject, outcome, reason, intervention_number, received_at"
)

# The customer shown is the contact the request came from when there is one (its
# address is the one we answer), else the customer's own address.
# The set of an intervention's assignment statuses, as one number both stores compute
# alike (SQLite's group_concat and PostgreSQL's string_agg differ): a bit per status.
_STATUS_BITS = {status: 1 << n for n, status in enumerate(AssignmentStatus)}
_STATUS_CASES = " ".join(f"WHEN '{status}' THEN {bit}" for status, bit in _STATUS_BITS.items())


def _statuses(bits: int | None) -> set[str]:
    return {status for status, bit in _STATUS_BITS.items() if (bits or 0) & bit}


# A fixed column list: the only piece joined in is _STATUS_CASES, built above from
# our own enum, never from input.
_INTERVENTION_COLUMNS = """
    i.number, i.status, i.subject, i.description, i.request_type, i.priority,
    i.desired_from, i.desired_to, i.source, i.related_number,
    i.created_at, i.updated_at, i.closed_at, i.notify_customer_on_resolve,
    i.response_due, i.resolution_due, i.last_inbound_at,
    cu.name AS customer_name, COALESCE(co.email, cu.email, '') AS customer_email,
    (SELECT sum(DISTINCT CASE a.status {status_cases} ELSE 0 END)
      FROM assignments a WHERE a.intervention_number = i.number) AS assignment_status_bits,
    EXISTS (SELECT 1 FROM messages m WHERE m.intervention_number = i.number
      AND m.kind = 'technician_reply' AND m.verified = 0) AS has_unverified_reply,
    EXISTS (SELECT 1 FROM messages m WHERE m.intervention_number = i.number
      AND m.kind = 'customer_mail' AND m.created_at > i.closed_at) AS has_mail_after_close,
    EXISTS (SELECT 1 FROM assignments a WHERE a.intervention_number = i.number
      AND a.report = 'not_done' AND a.status = 'confirmed') AS has_not_done_report,
    EXISTS (SELECT 1 FROM activities ac WHERE ac.intervention_number = i.number
      AND ac.verdict = 'done' AND ac.work_minutes IS NULL AND ac.superseded_by IS NULL
      ) AS has_hours_unread
    FROM interventions i
    JOIN customers cu ON cu.id = i.customer_id
    LEFT JOIN contacts co ON co.id = i.contact_id
""".replace("{status_cases}", _STATUS_CASES)


# The list's orders. `activity`: what moved last first (any message, ours too);
# `priority`: urgent first, then newest; `due`: the resolution deadline, soonest first,
# then the end of the desired period; cases with neither last.
LIST_ORDERS = {
    "activity": "i.updated_at DESC, i.number DESC",
    "number": "i.number DESC",
    "priority": "CASE i.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'normal'"
                " THEN 2 ELSE 3 END, i.number DESC",
    "due": "CASE WHEN i.resolution_due IS NULL THEN 1 ELSE 0 END, i.resolution_due,"
           " CASE WHEN i.desired_to IS NULL THEN 1 ELSE 0 END, i.desired_to, i.number DESC",
}


async def list_interventions(
    conn: ReadTx,
    *,
    status: Status | str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
    due: DueFilter | None = None,
    sort: str = "activity",
    owner: str | None = None,
    customer_id: int | None = None,
    equipment_id: int | None = None,
) -> InterventionPage:
    """A page of interventions in `sort` order (see LIST_ORDERS), with the total
    matching count (`due`: only the open ones with a deadline passed, or falling in a
    window; see tickets.due_filter).

    `q` is a plain substring match over subject and description (LIKE wildcards in it
    are taken literally); full-text search replaces it later. `owner`: only cases of
    customers that operator owns. `customer_id`, `equipment_id`: only the cases of that
    customer, of that machine.
    """
    where: list[str] = []
    params: list[Any] = []
    if owner is not None:
        where.append(OWNED_CASE_CONDITION)
        params.append(owner.lower())
    if status:
        where.append("i.status = ?")
        params.append(str(status))
    if customer_id is not None:
        where.append("i.customer_id = ?")
        params.append(customer_id)
    if equipment_id is not None:
        where.append("i.equipment_id = ?")
        params.append(equipment_id)
    if q:
        pattern = "%" + _escape_like(q) + "%"
        # lower() on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's does not.
        where.append("(lower(i.subject) LIKE lower(?) ESCAPE '\\'"
                     " OR lower(i.description) LIKE lower(?) ESCAPE '\\')")
        params += [pattern, pattern]
    if due is not None:
        clause_sql, due_params = due_clause(due)
        where.append(clause_sql)
        params += due_params
    # Only fixed fragments are joined into the SQL; every value is a bound parameter.
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total_rows = await conn.execute_fetchall(
        "SELECT count(*) FROM interventions i" + clause, params  # noqa: S608
    )
    rows = await conn.execute_fetchall(
        f"SELECT {_INTERVENTION_COLUMNS} {clause} ORDER BY {LIST_ORDERS[sort]}"
        " LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return {
        "items": [_summary(row) for row in rows],
        "total": int(next(iter(total_rows))[0]),
        "limit": limit,
        "offset": offset,
    }


async def get_intervention(conn: ReadTx, number: int) -> InterventionDetail | None:
    """One intervention with its whole thread, or None."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT " + _INTERVENTION_COLUMNS + " WHERE i.number = ?", (number,)
        )
    )
    if not rows:
        return None
    row = rows[0]
    summary = _summary(row)
    messages = await _messages(conn, number)
    return {
        **summary,
        "description": row["description"],
        "assignments": await _assignments(conn, number),
        "messages": messages,
        "notify_customer_on_resolve": None if row["notify_customer_on_resolve"] is None
        else bool(row["notify_customer_on_resolve"]),
        "activities": await activities_of(
            conn, number, {message["id"]: message["attachments"] for message in messages}),
        "sequence": await sequence_of(conn, number),
    }


async def get_intervention_status(conn: ReadTx, number: int) -> str | None:
    """`open` or `closed`; None when there is no such intervention."""
    rows = list(await conn.execute_fetchall(
        "SELECT status FROM interventions WHERE number = ?", (number,)
    ))
    return str(rows[0][0]) if rows else None


_ASSIGNMENT_COLUMNS = (
    "a.id, e.email, e.name, a.status, a.decided_at, a.reason, t.name AS team"
    " FROM assignments a JOIN employees e ON e.id = a.employee_id"
    " LEFT JOIN team_dispatches d ON d.id = a.team_dispatch_id"
    " LEFT JOIN teams t ON t.id = d.team_id"
)


async def _assignments(conn: ReadTx, number: int) -> list[AssignmentView]:
    rows = await conn.execute_fetchall(
        f"SELECT {_ASSIGNMENT_COLUMNS} WHERE a.intervention_number = ? ORDER BY a.id",
        (number,),
    )
    return [_assignment(r) for r in rows]


async def get_assignment(conn: ReadTx, assignment_id: int) -> AssignmentView | None:
    rows = list(await conn.execute_fetchall(
        f"SELECT {_ASSIGNMENT_COLUMNS} WHERE a.id = ?", (assignment_id,)
    ))
    return _assignment(rows[0]) if rows else None


_MESSAGE_COLUMNS = (
    "id, kind, direction, author, from_addr, to_addrs, cc_addrs, subject, body_text,"
    " verdict, verified, extra, created_at FROM messages"
)


async def _messages(conn: ReadTx, number: int) -> list[MessageView]:
    """The thread in order, attachments grouped in Python from one second query."""
    attachment_rows = await conn.execute_fetchall(
        "SELECT a.id, a.message_id, a.filename, a.content_type, a.size, a.sha256"
        " FROM attachments a JOIN messages m ON m.id = a.message_id"
        " WHERE m.intervention_number = ? ORDER BY a.id",
        (number,),
    )
    by_message: dict[int, list[AttachmentView]] = defaultdict(list)
    for a in attachment_rows:
        by_message[a["message_id"]].append(_attachment(a))
    message_rows = await conn.execute_fetchall(
        f"SELECT {_MESSAGE_COLUMNS} WHERE intervention_number = ? ORDER BY id",
        (number,),
    )
    return [_message(m, by_message.get(m["id"], [])) for m in message_rows]


async def get_message(conn: ReadTx, message_id: int) -> MessageView | None:
    """One thread message with its attachments (e.g. the note just added)."""
    rows = list(await conn.execute_fetchall(
        f"SELECT {_MESSAGE_COLUMNS} WHERE id = ?", (message_id,)
    ))
    if not rows:
        return None
    attachment_rows = await conn.execute_fetchall(
        "SELECT id, filename, content_type, size, sha256 FROM attachments"
        " WHERE message_id = ? ORDER BY id",
        (message_id,),
    )
    return _message(rows[0], [_attachment(a) for a in attachment_rows])


async def get_attachment(
    conn: ReadTx, attachment_id: int
) -> StoredAttachmentView | None:
    """An attachment's metadata (its bytes are in the BlobStore under `sha256`)."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT id, message_id, filename, content_type, size, sha256"
            " FROM attachments WHERE id = ?",
            (attachment_id,),
        )
    )
    if not rows:
        return None
    return {**_attachment(rows[0]), "message_id": rows[0]["message_id"]}


async def get_message_raw_sha(conn: ReadTx, message_id: int) -> str | None:
    """The sha256 of the original mail a thread message came from; None for messages
    we wrote ourselves (notes, status changes, outgoing mail)."""
    rows = list(
        await conn.execute_fetchall(
            "SELECT inb.raw_sha256 FROM messages m JOIN inbound inb ON inb.id = m.inbound_id"
            " WHERE m.id = ?",
            (message_id,),
        )
    )
    return str(rows[0][0]) if rows else None


async def get_raw_message(conn: ReadTx, sha256: str) -> RawMail | None:
    """An inbound mail's raw bytes as raw_messages keeps them: in the row, or (with an
    S3 blob store) in the store under `sha256`, `in_blobs`, the row's data then empty."""
    rows = list(await conn.execute_fetchall(
        "SELECT data, in_blobs FROM raw_messages WHERE sha256 = ?", (sha256,)))
    return RawMail(sha256, bytes(rows[0][0]), bool(rows[0][1])) if rows else None


@dataclass(frozen=True)
class RawMail:
    sha256: str
    data: bytes      # empty when in_blobs
    in_blobs: bool


async def list_employees(conn: ReadTx) -> list[EmployeeView]:
    rows = await conn.execute_fetchall(
        "SELECT id, email, name, language, active, created_at FROM employees ORDER BY id"
    )
    return [_employee(r) for r in rows]


async def get_employee(conn: ReadTx, employee_id: int) -> EmployeeView | None:
    rows = list(
        await conn.execute_fetchall(
            "SELECT id, email, name, language, active, created_at FROM employees WHERE id = ?",
            (employee_id,),
        )
    )
    return _employee(rows[0]) if rows else None


async def inbound_log(
    conn: ReadTx, limit: int = 100, outcome: str | None = None
) -> list[InboundView]:
    """The most recent inbound mails, newest first, optionally of one outcome."""
    # A fixed clause, not `? IS NULL OR ...`, so the (outcome, id) index is used.
    clause, params = ("WHERE outcome = ?", [outcome]) if outcome else ("", [])
    rows = await conn.execute_fetchall(
        f"SELECT {_INBOUND_COLUMNS} FROM inbound {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608
        [*params, limit],
    )
    return [
        {
            "id": r["id"],
            "raw_sha256": r["raw_sha256"],
            "size": r["size"],
            "message_id": r["message_id"],
            "sender": r["sender"],
            "envelope_from": r["envelope_from"],
            "envelope_to": _json_list(r["envelope_to"]),
            "source": r["source"],
            "subject": r["subject"],
            "outcome": r["outcome"],
            "reason": r["reason"],
            "intervention_number": r["intervention_number"],
            "received_at": r["received_at"],
        }
        for r in rows
    ]


def _summary(row: Any) -> InterventionSummary:
    return {
        "number": row["number"],
        "status": row["status"],
        "subject": row["subject"],
        "request_type": row["request_type"],
        "priority": row["priority"],
        "desired_from": row["desired_from"],
        "desired_to": row["desired_to"],
        "source": row["source"],
        "related_number": row["related_number"],
        "customer": {"name": row["customer_name"], "email": row["customer_email"]},
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "closed_at": row["closed_at"],
        "response_due": row["response_due"],
        "resolution_due": row["resolution_due"],
        "last_activity_at": row["updated_at"],
        "last_inbound_at": row["last_inbound_at"],
        "needs_attention": needs_attention(
            status=row["status"],
            assignment_statuses=_statuses(row["assignment_status_bits"]),
            has_unverified_reply=bool(row["has_unverified_reply"]),
            has_mail_after_close=bool(row["has_mail_after_close"]),
            has_not_done_report=bool(row["has_not_done_report"]),
            has_hours_unread=bool(row["has_hours_unread"]),
        ),
    }


def _assignment(row: Any) -> AssignmentView:
    return {
        "id": row["id"],
        "employee_email": row["email"],
        "employee_name": row["name"],
        "status": AssignmentStatus(row["status"]),
        "decided_at": row["decided_at"],
        "reason": row["reason"],
        "team": row["team"],
    }


def _message(m: Any, attachments: list[AttachmentView]) -> MessageView:
    view = _message_fields(m, attachments)
    extra = view["extra"]
    if m["kind"] == MessageKind.TECHNICIAN_REPLY and "work_minutes" in extra:
        view["hours"] = _hours(extra.get("work_minutes"))
        view["travel_hours"] = _hours(extra.get("travel_minutes"))
    return view


def _hours(minutes: int | None) -> float | None:
    return None if minutes is None else minutes / 60


def _message_fields(m: Any, attachments: list[AttachmentView]) -> MessageView:
    return {
        "id": m["id"],
        "kind": m["kind"],
        "direction": m["direction"],
        "from": m["from_addr"],
        "to": _json_list(m["to_addrs"]),
        "cc": _json_list(m["cc_addrs"]),
        "author": m["author"],
        "subject": m["subject"],
        "body_text": m["body_text"],
        "verdict": m["verdict"],
        "verified": bool(m["verified"]),
        "extra": load_extra(m["extra"]),
        "created_at": m["created_at"],
        "attachments": attachments,
    }


def _employee(row: Any) -> EmployeeView:
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "language": row["language"],
        "active": bool(row["active"]),
        "created_at": row["created_at"],
    }


def _attachment(row: Any) -> AttachmentView:
    return {
        "id": row["id"],
        "filename": row["filename"],
        "content_type": row["content_type"],
        "size": row["size"],
        "sha256": row["sha256"],
    }


def _json_list(text: str | None) -> list[str]:
    # Columns hold JSON lists written by the tickets layer; tolerate a damaged one
    # rather than fail the whole thread view.
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
