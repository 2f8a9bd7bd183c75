"""Writing outgoing mail into the outbox, inside the transaction that causes it.

DESIGN invariant 3: the row is committed with the change, so a crash can neither
lose the mail nor send it without the change. Its Message-ID is chosen here, once,
and the outbox worker sends it under that Message-ID on every attempt.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nexusmail.clock import iso
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.models import Direction, MessageKind, OutboxKind


@dataclass(frozen=True)
class OutgoingMail:
    kind: OutboxKind
    recipient: str
    template: str                  # templates/mail/<language>/<template>.{subject,txt,html}.j2
    language: str
    context: Mapping[str, Any] = field(default_factory=dict)   # JSON-serialisable
    intervention_number: int | None = None
    thread_kind: MessageKind = MessageKind.OUTBOUND_MAIL       # how it shows on the thread


def new_message_id(domain: str) -> str:
    """A fresh Message-ID (without angle brackets) under our own domain."""
    return f"nm.{secrets.token_hex(12)}@{domain}"


def enqueue_mail(
    tx: WriteTx, mail: OutgoingMail, *, now: datetime, domain: str
) -> str:
    """Queue `mail`; record it on its intervention's thread; return its Message-ID."""
    message_id = new_message_id(domain)
    thread_message_id = None
    if mail.intervention_number is not None:
        thread_message_id = tx.execute(
            "INSERT INTO messages (intervention_number, kind, direction, author, to_addrs,"
            " message_id, created_at) VALUES (?, ?, ?, 'nexusmail', ?, ?, ?) RETURNING id",
            (mail.intervention_number, mail.thread_kind, Direction.OUT,
             json.dumps([mail.recipient]), message_id, iso(now)),
        ).fetchone()[0]
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


def recent_count(
    tx: WriteTx, *, recipient: str, kind: OutboxKind, since: datetime
) -> int:
    """How many mails of `kind` went (or are going) to `recipient` since `since`."""
    row = tx.execute(
        "SELECT count(*) FROM outbox WHERE recipient = ? AND kind = ? AND created_at >= ?",
        (recipient, kind, iso(since)),
    ).fetchone()
    return int(row[0])
