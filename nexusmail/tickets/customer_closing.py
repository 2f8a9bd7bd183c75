"""The customer's closing mail: the job is done, what was done, and the hours.

Sent when an intervention becomes resolved, if the intervention asks for it
(notify_customer_on_resolve) or, when it says nothing, its request type does
(request_types.customer_closing_mail) or, when neither says, `[reports]
customer_closing_mail`. It goes to the addresses an operator's reply would use, in
the customer's language, and answers their original request (In-Reply-To its first
mail, References the later ones), so it lands in the conversation they started. A case
of a listed request type is written by that type's closing mail when one exists (a
maintenance visit closes differently from a repair), else by the general one.
"""

from __future__ import annotations

from datetime import datetime

from nexusmail.config import Settings
from nexusmail.storage.connections import DbRow, WriteTx
from nexusmail.tickets.activities import format_hours
from nexusmail.tickets.message_extra import load_extra
from nexusmail.tickets.models import MessageKind, OutboxKind
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.operator_replies import (
    acknowledged_language,
    customer_message_ids,
    recipients_of,
)
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.tags import format_tag


def set_notify_on_resolve(tx: WriteTx, number: int, notify: bool | None) -> int:
    """Record whether this intervention's customer gets the closing mail (None: as
    configured); returns `number`, so it chains after the call that opened the case."""
    if notify is not None:
        tx.execute("UPDATE interventions SET notify_customer_on_resolve = ? WHERE number = ?",
                   (int(notify), number))
    return number


def wants_closing_mail(tx: WriteTx, number: int, settings: Settings) -> bool:
    # The most specific choice wins: this case's, else its type's, else the config's.
    row = tx.execute(
        "SELECT i.notify_customer_on_resolve, t.customer_closing_mail FROM interventions i"
        " LEFT JOIN request_types t ON t.code = i.request_type WHERE i.number = ?",
        (number,)).fetchone()
    for choice in (row or (None, None)):
        if choice is not None:
            return bool(choice)
    return settings.reports.customer_closing_mail


def queue_closing_mail(tx: WriteTx, number: int, *, now: datetime,
                       settings: Settings) -> list[str]:
    """Queue the closing mail when it is wanted; the Message-IDs queued."""
    if not wants_closing_mail(tx, number, settings):
        return []
    case = tx.execute(
        "SELECT i.subject, c.email AS customer_email, c.language, k.email AS contact_email,"
        " t.code AS type_code, t.name_en, t.name_it, t.name_ro"
        " FROM interventions i JOIN customers c ON c.id = i.customer_id"
        " LEFT JOIN contacts k ON k.id = i.contact_id"
        " LEFT JOIN request_types t ON t.code = i.request_type WHERE i.number = ?",
        (number,)).fetchone()
    recipients = recipients_of(case["contact_email"], case["customer_email"], settings)
    if not recipients:
        return []
    language = (case["language"] or acknowledged_language(tx, number)
                or settings.mail.default_language)
    rows = tx.execute(
        "SELECT a.text, a.work_minutes, a.verdict, e.name, m.extra FROM activities a"
        " LEFT JOIN employees e ON e.id = a.employee_id"
        " LEFT JOIN messages m ON m.id = a.message_id"
        " WHERE a.intervention_number = ? AND a.superseded_by IS NULL ORDER BY a.id",
        (number,)).fetchall()
    total = sum(row["work_minutes"] or 0 for row in rows)
    # What the customer reads: the technicians' done reports only (an operator's note of
    # a phone call is internal), each as the report text after "fatto"/"done".
    reports = []
    for row in rows:
        if row["verdict"] != "done":
            continue
        text = str(load_extra(row["extra"]).get("reason") or row["text"]).strip()
        if text:
            reports.append({"technician": row["name"] or "", "text": text})
    earlier = customer_message_ids(tx, number)
    context = {
        "number": number, "tag": format_tag(number), "subject": case["subject"],
        "reports": reports,
        "total_hours": format_hours(total or None, language),
        # Their original request first: the answer sits under what they wrote.
        "in_reply_to": earlier[:1], "references": earlier,
        **_request_type_context(case, language),
    }
    return [
        enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.CUSTOMER_CLOSING, recipient=recipient, template="case_resolved",
            language=language, context=context, intervention_number=number,
            thread_kind=MessageKind.OUTBOUND_MAIL,
        ), now=now, domain=own_domain(settings))
        for recipient in recipients
    ]


def _request_type_context(case: DbRow, language: str) -> dict[str, str]:
    """The case's request type for the templates, and the closing mail written for that
    type (`mail/<language>/closing/<code>`) to be tried before the general one. A type
    that is free text rather than one of the list's codes has neither."""
    code = case["type_code"]
    if code is None:
        return {"request_type": "", "request_type_name": ""}
    names = {"en": case["name_en"], "it": case["name_it"], "ro": case["name_ro"]}
    return {"request_type": code, "request_type_name": names.get(language) or names["en"] or code,
            "template_variant": f"closing/{code}"}
