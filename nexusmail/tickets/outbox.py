"""The outbox table: every statement that reads or writes it lives here.

Outgoing mail is queued inside the transaction that causes it (the transactional
outbox): the row is committed with the change, so a crash can neither lose the mail
nor send it without the change. Its Message-ID is chosen here, once, and the outbox
worker (dispatch/outbox_worker.py) sends it under that Message-ID on every attempt,
then records the outcome with the `mark_*` functions; readiness and metrics read the
backlog. Rows are never deleted: sent and failed rows are the record of what left.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nexusmail.clock import iso
from nexusmail.storage.connections import DbRow, ReadTx, WriteTx
from nexusmail.tickets.message_extra import dump_extra, load_extra
from nexusmail.tickets.models import Direction, MessageKind, OutboxKind, OutboxStatus

# Longer relay answers are cut: the row and the thread show the start of the reason.
MAX_ERROR_CHARS = 1000
# What the worker needs to compose a row (dispatch.compose.OutboxRow reads these).
ROW_COLUMNS = ("id, message_id, kind, recipient, language, template, context,"
               " intervention_number, thread_message_id, attempts, next_attempt_at")


@dataclass(frozen=True)
class OutgoingMail:
    kind: OutboxKind
    recipient: str
    template: str                  # templates/mail/<language>/<template>.{subject,txt,html}.j2
    language: str
    context: Mapping[str, Any] = field(default_factory=dict)   # JSON-serialisable
    intervention_number: int | None = None
    thread_kind: MessageKind = MessageKind.OUTBOUND_MAIL       # how it shows on the thread
    # A thread message already written for this mail (an operator's reply, with its
    # author and files); None: enqueue_mail writes one.
    thread_message_id: int | None = None


def new_message_id(domain: str) -> str:
    """A fresh Message-ID (without angle brackets) under our own domain."""
    return f"nm.{secrets.token_hex(12)}@{domain}"


def enqueue_mail(
    tx: WriteTx, mail: OutgoingMail, *, now: datetime, domain: str
) -> str:
    """Queue `mail`; record it on its intervention's thread; return its Message-ID."""
    message_id = new_message_id(domain)
    thread_message_id = mail.thread_message_id
    if mail.intervention_number is not None and thread_message_id is None:
        thread_message_id = tx.execute(
            "INSERT INTO messages (intervention_number, kind, direction, author, to_addrs,"
            " message_id, created_at) VALUES (?, ?, ?, 'nexusmail', ?, ?, ?) RETURNING id",
            (mail.intervention_number, mail.thread_kind, Direction.OUT,
             json.dumps([mail.recipient]), message_id, iso(now)),
        ).fetchone()[0]
    if mail.intervention_number is not None:
        tx.execute(
            "INSERT INTO thread_refs (message_id, intervention_number) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            (message_id, mail.intervention_number),
        )
    tx.execute(
        "INSERT INTO outbox (message_id, intervention_number, thread_message_id, kind,"
        " recipient, language, template, context, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (message_id, mail.intervention_number, thread_message_id, mail.kind,
         mail.recipient, mail.language, mail.template,
         json.dumps(dict(mail.context), ensure_ascii=False), iso(now), iso(now)),
    )
    return message_id


async def due_rows(conn: ReadTx, now: datetime, limit: int) -> list[DbRow]:
    """Pending rows whose time has come, longest waiting first (index outbox_due)."""
    return list(await conn.execute_fetchall(
        f"SELECT {ROW_COLUMNS} FROM outbox"  # noqa: S608 (constant column list)
        " WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        (OutboxStatus.PENDING, iso(now), limit),
    ))


async def pending_backlog(conn: ReadTx) -> tuple[int, str | None]:
    """How many rows wait to be sent, and when the oldest was queued (None: none)."""
    rows = list(await conn.execute_fetchall(
        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status = ?",
        (OutboxStatus.PENDING,)))
    return int(rows[0][0]), rows[0][1]


@dataclass(frozen=True)
class ShownMail:
    """The composed mail as operators see it on the intervention's thread."""

    subject: str
    body_text: str
    from_addr: str


def mark_sent(tx: WriteTx, row_id: int, thread_message_id: int | None, *,
              sent_at: datetime, shown: ShownMail) -> None:
    """The relay accepted the row's mail."""
    tx.execute(
        "UPDATE outbox SET status = ?, sent_at = ?, attempts = attempts + 1,"
        " last_error = '' WHERE id = ?",
        (OutboxStatus.SENT, iso(sent_at), row_id),
    )
    _show_delivery(tx, thread_message_id, shown, delivery=OutboxStatus.SENT, error="")


def mark_retry(tx: WriteTx, row_id: int, *, retry_at: datetime, error: str) -> None:
    """A temporary failure: the row is tried again at `retry_at` (if still pending)."""
    tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
        " WHERE id = ? AND status = ?",
        (iso(retry_at), error[:MAX_ERROR_CHARS], row_id, OutboxStatus.PENDING),
    )


def mark_failed(tx: WriteTx, row_id: int, thread_message_id: int | None, *, error: str,
                shown: ShownMail | None, attempted: bool = True) -> None:
    """Given up for good; `attempted` False when the row could not even be read, so no
    attempt is counted."""
    tx.execute(
        "UPDATE outbox SET status = ?, attempts = attempts + ?, last_error = ? WHERE id = ?",
        (OutboxStatus.FAILED, int(attempted), error[:MAX_ERROR_CHARS], row_id),
    )
    _show_delivery(tx, thread_message_id, shown, delivery=OutboxStatus.FAILED, error=error)


def _show_delivery(tx: WriteTx, thread_message_id: int | None, shown: ShownMail | None, *,
                   delivery: OutboxStatus, error: str) -> None:
    """Show operators what was sent (or why not) on the intervention's thread."""
    if thread_message_id is None:
        return
    found = tx.execute(
        "SELECT extra FROM messages WHERE id = ?", (thread_message_id,)
    ).fetchone()
    if found is None:
        return
    extra = load_extra(found[0])
    extra["delivery"] = delivery
    if error:
        extra["delivery_error"] = error[:MAX_ERROR_CHARS]
    else:
        extra.pop("delivery_error", None)
    if shown is None:
        tx.execute(
            "UPDATE messages SET extra = ? WHERE id = ?",
            (dump_extra(extra), thread_message_id),
        )
        return
    tx.execute(
        "UPDATE messages SET subject = ?, body_text = ?, from_addr = ?, extra = ? WHERE id = ?",
        (shown.subject, shown.body_text, shown.from_addr,
         dump_extra(extra), thread_message_id),
    )
