"""An operator's answer to the customer, written on the thread and mailed from it.

The reply is a thread message by its author (with the files attached to it), and one
outbox row per address we write to: the customer's and the contact's, when they
differ. Each mail answers the customer's latest mail (In-Reply-To) and carries the
earlier ones in References and the case tag in the subject, so it lands in the
customer's existing conversation and their answer threads back onto this case
whichever of the three their client keeps. Everything happens in the caller's
transaction: the message, the mails and an optional close commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.cases import (
    Conflict,
    NewMessage,
    NotFound,
    StoredAttachment,
    add_message,
    close_intervention,
)
from nexusmail.tickets.models import Direction, MessageKind, OutboxKind, Status
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.tags import format_tag

# How many of the customer's earlier Message-IDs go into References: enough for every
# client to find the conversation, short enough to keep the header small.
MAX_REFERENCES = 10


@dataclass(frozen=True)
class CustomerReply:
    """What the operator wrote; `author` as the thread shows it ("operator:EMAIL")."""

    text: str
    author: str
    author_name: str = ""
    attachments: Sequence[StoredAttachment] = ()
    close: bool = False


def reply_to_customer(
    tx: WriteTx, number: int, reply: CustomerReply, *, now: datetime, settings: Settings
) -> int:
    """Write `reply` on intervention `number`'s thread and queue its mails; the thread
    message's id. `NotFound` for no such case; `Conflict` when nobody can be written to
    (no address on the customer or contact) or a close was asked of a closed case."""
    case = tx.execute(
        "SELECT i.subject, i.status, c.email AS customer_email, c.language,"
        " k.email AS contact_email"
        " FROM interventions i JOIN customers c ON c.id = i.customer_id"
        " LEFT JOIN contacts k ON k.id = i.contact_id WHERE i.number = ?",
        (number,),
    ).fetchone()
    if case is None:
        raise NotFound(msg("intervention {number} does not exist", number=number))
    if reply.close and case["status"] == Status.CLOSED:
        raise Conflict(msg("intervention {number} is already closed", number=number))
    recipients = recipients_of(case["contact_email"], case["customer_email"], settings)
    if not recipients:
        raise Conflict(msg("intervention {number} has no customer address to write to",
                           number=number))
    earlier = customer_message_ids(tx, number)
    language = case["language"] or acknowledged_language(tx, number) \
        or settings.mail.default_language
    message_row = add_message(
        tx, number,
        NewMessage(kind=MessageKind.OPERATOR_REPLY, direction=Direction.OUT,
                   author=reply.author, body_text=reply.text, to_addrs=recipients,
                   subject=_subject(number, case["subject"]), attachments=reply.attachments),
        now=now,
    )
    context = {
        "number": number, "tag": format_tag(number), "subject": case["subject"],
        "text": reply.text, "operator_name": reply.author_name,
        "in_reply_to": earlier[-1:], "references": earlier,
        "attachments": [{"sha256": a.sha256, "filename": a.filename,
                         "content_type": a.content_type} for a in reply.attachments],
    }
    sent_ids = [
        enqueue_mail(
            tx,
            OutgoingMail(kind=OutboxKind.OPERATOR_REPLY, recipient=recipient,
                         template="operator_reply", language=language, context=context,
                         intervention_number=number, thread_kind=MessageKind.OPERATOR_REPLY,
                         thread_message_id=message_row),
            now=now, domain=own_domain(settings),
        )
        for recipient in recipients
    ]
    # The thread message is known by the first mail's Message-ID (all are in thread_refs).
    tx.execute("UPDATE messages SET message_id = ? WHERE id = ?", (sent_ids[0], message_row))
    if reply.close:
        close_intervention(tx, number, now=now, author=reply.author)
    return message_row


def recipients_of(contact: str | None, customer: str | None, settings: Settings) -> list[str]:
    """The contact first, then the customer's own address; never one of ours, no twice."""
    ours = {address.lower() for address in settings.mail.support_addresses}
    found: list[str] = []
    for address in (contact, customer):
        cleaned = (address or "").strip().lower()
        if cleaned and "@" in cleaned and cleaned not in ours and cleaned not in found:
            found.append(cleaned)
    return found


def customer_message_ids(tx: WriteTx, number: int) -> list[str]:
    """The Message-IDs of the customer's mails on this case, oldest first (the last
    `MAX_REFERENCES`)."""
    rows = tx.execute(
        "SELECT message_id FROM messages WHERE intervention_number = ? AND kind = ?"
        " AND message_id IS NOT NULL AND message_id <> '' ORDER BY id DESC LIMIT ?",
        (number, MessageKind.CUSTOMER_MAIL, MAX_REFERENCES),
    ).fetchall()
    return [str(row[0]).strip("<>") for row in reversed(rows)]


def acknowledged_language(tx: WriteTx, number: int) -> str | None:
    """The language the customer was first answered in (read from their own mail)."""
    row = tx.execute(
        "SELECT language FROM outbox WHERE intervention_number = ? AND kind = ?"
        " ORDER BY id LIMIT 1",
        (number, OutboxKind.ACKNOWLEDGEMENT),
    ).fetchone()
    return str(row[0]) if row is not None else None


def _subject(number: int, subject: str) -> str:
    return f"Re: {format_tag(number)} {subject}".rstrip()
