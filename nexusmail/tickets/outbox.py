"""The outbox table: every statement that reads or writes it lives here.

Outgoing mail is queued inside the transaction that causes it (the transactional
outbox): the row is committed with the change, so a crash can neither lose the mail
nor send it without the change. Its Message-ID is chosen here, once, and the outbox
worker (dispatch/outbox_worker.py) sends it under that Message-ID on every attempt,
then records the outcome with the `mark_*` functions; readiness and metrics read the
backlog. Rows are never deleted: sent and failed rows are the record of what left.

Several daemons may share the table (on PostgreSQL). A daemon claims the rows it is
about to send (`claim_due`): its id in claimed_by, a fresh claim_seq, and a lease
until a moment of the shared clock (storage.db_time); rows locked by another daemon's
claim in progress are skipped, not waited for. Every mark names the claim it ends
(`Claim`) and changes nothing when that claim no longer holds the row: once a lease ran
out and another daemon claimed the row, the late daemon's outcome is dropped, never
written over the new holder's. A row whose lease ran out goes to any daemon.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nexusmail.clock import iso
from nexusmail.storage.connections import DbRow, ReadTx, WriteTx, dialect_of
from nexusmail.storage.db_time import now_plus
from nexusmail.tickets.message_extra import dump_extra, load_extra
from nexusmail.tickets.models import Direction, MessageKind, OutboxKind, OutboxStatus

# Longer relay answers are cut: the row and the thread show the start of the reason.
MAX_ERROR_CHARS = 1000
# What the worker needs to compose a row (dispatch.compose.OutboxRow reads these).
ROW_COLUMNS = ("id, message_id, kind, recipient, language, template, context,"
               " intervention_number, thread_message_id, attempts, next_attempt_at")
# What a mark returns: its thread message's `extra` (NULL: no such message; the column
# is never NULL), read in the mark's own statement, since on PostgreSQL each statement
# read is a round trip the one writer waits for.
_THREAD_EXTRA = "(SELECT extra FROM messages WHERE id = ?)"


@dataclass(frozen=True)
class Claim:
    """Who holds a row and by which of its claims: what every mark is fenced by."""

    worker_id: str
    seq: int


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
    # The thread message's id, as a value or as the subquery that finds the one written
    # here by its fresh Message-ID (the outbox row names it without the writer waiting a
    # round trip on PostgreSQL to read the id back).
    thread_message: tuple[str, tuple[Any, ...]] = ("?", (mail.thread_message_id,))
    if mail.intervention_number is not None and mail.thread_message_id is None:
        tx.execute(
            "INSERT INTO messages (intervention_number, kind, direction, author, to_addrs,"
            " message_id, created_at) VALUES (?, ?, ?, 'nexusmail', ?, ?, ?)",
            (mail.intervention_number, mail.thread_kind, Direction.OUT,
             json.dumps([mail.recipient]), message_id, iso(now)),
        )
        thread_message = ("(SELECT id FROM messages WHERE intervention_number = ?"
                          " AND message_id = ?)", (mail.intervention_number, message_id))
    if mail.intervention_number is not None:
        tx.execute(
            "INSERT INTO thread_refs (message_id, intervention_number) VALUES (?, ?)"
            " ON CONFLICT DO NOTHING",
            (message_id, mail.intervention_number),
        )
    tx.execute(
        "INSERT INTO outbox (message_id, intervention_number, thread_message_id, kind,"  # noqa: S608
        f" recipient, language, template, context, next_attempt_at, created_at)"
        f" VALUES (?, ?, {thread_message[0]}, ?, ?, ?, ?, ?, ?, ?)",
        (message_id, mail.intervention_number, *thread_message[1], mail.kind,
         mail.recipient, mail.language, mail.template,
         json.dumps(dict(mail.context), ensure_ascii=False), iso(now), iso(now)),
    )
    return message_id


def claim_due(tx: WriteTx, *, now: datetime, limit: int, worker_id: str,
              lease_s: float) -> list[DbRow]:
    """Claim up to `limit` due rows nobody holds (or whose lease ran out) for
    `worker_id` until `lease_s` from now; return them, longest waiting first, with
    their claim_seq. On PostgreSQL rows another daemon is claiming right now are
    skipped (SKIP LOCKED); SQLite's one writer makes the plain statement safe."""
    shared_now, now_params = now_plus(tx, now)
    until, until_params = now_plus(tx, now, lease_s)
    due = (f"SELECT id AS due_id FROM outbox WHERE status = ? AND next_attempt_at <= ?"  # noqa: S608
           f" AND (lease_until IS NULL OR lease_until < {shared_now})"
           " ORDER BY next_attempt_at, id LIMIT ?")
    params = (OutboxStatus.PENDING, iso(now), *now_params, limit)
    if dialect_of(tx) == "postgresql":
        # The rows are chosen once, before the update. Written as `id IN (subquery)`,
        # the planner may run the subquery again for every row it updates (a semi
        # join), and each run skips the rows this statement just claimed as locked
        # and takes the next ones: a claim of 5 took 12.
        rows = tx.execute(
            f"WITH due AS MATERIALIZED ({due} FOR UPDATE SKIP LOCKED)"  # noqa: S608
            f" UPDATE outbox SET claimed_by = ?, claim_seq = claim_seq + 1,"
            f" lease_until = {until} FROM due WHERE outbox.id = due.due_id"
            f" RETURNING {ROW_COLUMNS}, claim_seq",
            (*params, worker_id, *until_params),
        ).fetchall()
    else:  # one writer: the plain statement is safe
        rows = tx.execute(
            f"UPDATE outbox SET claimed_by = ?, claim_seq = claim_seq + 1,"  # noqa: S608
            f" lease_until = {until} WHERE id IN ({due})"
            f" RETURNING {ROW_COLUMNS}, claim_seq",
            (worker_id, *until_params, *params),
        ).fetchall()
    return sorted(rows, key=lambda r: (str(r["next_attempt_at"]), int(r["id"])))


def renew_claims(tx: WriteTx, *, now: datetime, worker_id: str, lease_s: float) -> int:
    """Push back the lease of every pending row `worker_id` still holds; return how
    many. A lease that already ran out is not renewed: it may be another's by now."""
    shared_now, now_params = now_plus(tx, now)
    until, until_params = now_plus(tx, now, lease_s)
    return tx.execute(
        f"UPDATE outbox SET lease_until = {until}"  # noqa: S608 (constant expressions)
        f" WHERE claimed_by = ? AND status = ? AND lease_until >= {shared_now}",
        (*until_params, worker_id, OutboxStatus.PENDING, *now_params),
    ).rowcount


def release_claim(tx: WriteTx, row_id: int, claim: Claim) -> None:
    """Give back a claimed row not tried in this pass: any daemon may take it now."""
    tx.execute(
        "UPDATE outbox SET lease_until = NULL"
        " WHERE id = ? AND claimed_by = ? AND claim_seq = ? AND status = ?",
        (row_id, claim.worker_id, claim.seq, OutboxStatus.PENDING),
    )


def release_claims_of(tx: WriteTx, worker_id: str) -> int:
    """A daemon known to be dead: every pending row it claimed may be claimed by any
    daemon now, not after its lease. Returns how many. (A mail it had handed to the
    relay before dying is sent again under the same Message-ID: at least once.)"""
    return int(tx.execute(
        "UPDATE outbox SET lease_until = NULL"
        " WHERE claimed_by = ? AND status = ? AND lease_until IS NOT NULL",
        (worker_id, OutboxStatus.PENDING),
    ).rowcount)


def held_by(tx: WriteTx, *, now: datetime, worker_id: str) -> int:
    """How many pending rows `worker_id` holds under a lease still running."""
    shared_now, now_params = now_plus(tx, now)
    return int(tx.execute(
        "SELECT COUNT(*) FROM outbox WHERE claimed_by = ? AND status = ?"  # noqa: S608
        f" AND lease_until >= {shared_now}",
        (worker_id, OutboxStatus.PENDING, *now_params),
    ).fetchone()[0])


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


# Every mark ends one claim: it changes the row only while that claim still holds it.
def mark_sent(tx: WriteTx, row_id: int, thread_message_id: int | None, claim: Claim, *,
              sent_at: datetime, shown: ShownMail) -> bool:
    """The relay accepted the row's mail; False: the claim was lost, nothing changed."""
    marked = tx.execute(
        "UPDATE outbox SET status = ?, sent_at = ?, attempts = attempts + 1,"  # noqa: S608
        " last_error = '', lease_until = NULL"
        " WHERE id = ? AND claimed_by = ? AND claim_seq = ? AND status = ?"
        f" RETURNING {_THREAD_EXTRA}",
        (OutboxStatus.SENT, iso(sent_at), row_id, claim.worker_id, claim.seq,
         OutboxStatus.PENDING, thread_message_id),
    ).fetchone()
    if marked is None:
        return False
    _show_delivery(tx, thread_message_id, marked[0], shown, delivery=OutboxStatus.SENT,
                   error="")
    return True


def mark_retry(tx: WriteTx, row_id: int, claim: Claim, *, retry_at: datetime,
               error: str) -> bool:
    """A temporary failure: the row is tried again at `retry_at`, by any daemon (the
    lease ends); False: the claim was lost, nothing changed."""
    return tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
        " lease_until = NULL"
        " WHERE id = ? AND claimed_by = ? AND claim_seq = ? AND status = ?",
        (iso(retry_at), error[:MAX_ERROR_CHARS], row_id, claim.worker_id, claim.seq,
         OutboxStatus.PENDING),
    ).rowcount == 1


def mark_failed(tx: WriteTx, row_id: int, thread_message_id: int | None, claim: Claim, *,
                error: str, shown: ShownMail | None, attempted: bool = True) -> bool:
    """Given up for good; `attempted` False when the row could not even be read, so no
    attempt is counted. False: the claim was lost, nothing changed."""
    marked = tx.execute(
        "UPDATE outbox SET status = ?, attempts = attempts + ?, last_error = ?,"  # noqa: S608
        " lease_until = NULL"
        " WHERE id = ? AND claimed_by = ? AND claim_seq = ? AND status = ?"
        f" RETURNING {_THREAD_EXTRA}",
        (OutboxStatus.FAILED, int(attempted), error[:MAX_ERROR_CHARS], row_id,
         claim.worker_id, claim.seq, OutboxStatus.PENDING, thread_message_id),
    ).fetchone()
    if marked is None:
        return False
    _show_delivery(tx, thread_message_id, marked[0], shown, delivery=OutboxStatus.FAILED,
                   error=error)
    return True


def _show_delivery(tx: WriteTx, thread_message_id: int | None, thread_extra: str | None,
                   shown: ShownMail | None, *, delivery: OutboxStatus, error: str) -> None:
    """Show operators what was sent (or why not) on the intervention's thread message,
    whose `extra` was `thread_extra` (None: there is none)."""
    if thread_message_id is None or thread_extra is None:
        return
    extra = load_extra(thread_extra)
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
