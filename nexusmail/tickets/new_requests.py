"""Opening a request: customer, intervention, first thread entry, acknowledgement.

Used for mail that opens a case and for an operator's quick entry of a phone call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import structlog

from nexusmail.config import Settings
from nexusmail.mail.peers import Peer, peer_of
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.ack_budget import AckSkipped, ask_ack_refused, record_ack
from nexusmail.tickets.case_edits import request_type_defaults, resolve_links
from nexusmail.tickets.cases import (
    CustomerRef,
    NewIntervention,
    NewMessage,
    add_participants,
    append_message,
    create_intervention,
)
from nexusmail.tickets.models import Direction, MessageKind, OutboxKind, Priority, Source
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.request_guess import TypeList, ask_type_list
from nexusmail.tickets.sender_match import link_equipment, match_sender
from nexusmail.tickets.sequence_plan import start_by_trigger
from nexusmail.tickets.sla_plan import plan_case_to_open, plan_opened_case
from nexusmail.tickets.tags import format_tag

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OpenRequest:
    customer_email: str
    customer_name: str
    subject: str
    description: str
    source: Source
    request_type: str = ""
    priority: Priority = Priority.NORMAL
    desired_from: date | None = None
    desired_to: date | None = None
    author: str = ""
    related_number: int | None = None
    # The customer's mail when the request came by mail; else an operator's entry is made.
    first_message: NewMessage | None = None
    # Language the request was written in, when known (used for a new customer).
    language_hint: str | None = None
    # False for imported history: old customers must not get an acknowledgement now.
    acknowledge: bool = True
    # False for imported history too: an old case starts no action sequence, whose steps
    # would mail technicians about a job long done.
    start_sequences: bool = True
    # Tokens of the mail that may be serials of the customer's machines (tickets.serials).
    serial_candidates: tuple[str, ...] = ()
    # Other addresses that took part (a mail's To and Cc), besides the customer's.
    participants: tuple[str, ...] = ()
    # What an operator says it is about (each checked against the customer's records)
    # and how and when it came; `links` names the ones given (tickets.case_edits).
    contact_email: str | None = None
    site_id: int | None = None
    equipment_serial: str | None = None
    links: frozenset[str] = frozenset()
    channel: str | None = None
    requested_at: str | None = None
    # False: the request type's default priority applies (when it is a type of the list).
    priority_given: bool = True
    # The list of request types when the caller read it already (a mail's guess): the
    # acknowledgement names the type from it rather than reading the list again.
    type_list: TypeList | None = None


@dataclass(frozen=True)
class Opened:
    number: int
    # Why the acknowledgement that was due did not go out (None: it was queued, or
    # none was asked for).
    ack_skipped: AckSkipped | None = None


def open_request(
    tx: WriteTx, request: OpenRequest, *, now: datetime, settings: Settings
) -> int:
    """Open an intervention for `request`; queue its acknowledgement; return its number."""
    return open_case(tx, request, now=now, settings=settings).number


def open_case(
    tx: WriteTx, request: OpenRequest, *, now: datetime, settings: Settings,
    sender: Callable[[], CustomerRef] | None = None,
) -> Opened:
    """`open_request`, also saying whether the acknowledgement was skipped and why.
    `sender`: the customer's match (sender_match.ask_match_sender), asked earlier in
    the unit for `request.customer_email`."""
    customer = sender() if sender is not None else match_sender(
        tx, email=request.customer_email, name=request.customer_name, now=now,
        settings=settings)
    # The acknowledgement's budget is asked before the case's reads and writes (none of
    # which counts an acknowledgement): on PostgreSQL its answer comes back with the
    # contract's or the case's number rather than in a round trip of its own.
    refused = (ask_ack_refused(tx, _peer(customer, settings), now=now,
                               settings=settings.mail) if request.acknowledge else None)
    if customer.created and request.language_hint:
        tx.execute("UPDATE customers SET language = ? WHERE id = ?",
                   (request.language_hint, customer.customer_id))
    priority = request.priority
    if not request.priority_given:
        priority = Priority(request_type_defaults(tx, request.request_type)[0] or priority)
    linked = resolve_links(tx, customer.customer_id, now=now,
                           contact_email=request.contact_email, site_id=request.site_id,
                           equipment_serial=request.equipment_serial, given=request.links)
    first = request.first_message or NewMessage(
        kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=request.author,
        subject=request.subject, body_text=request.description,
        extra={"entry": "operator"},
    )
    sla = plan_case_to_open(tx, customer.customer_id, requested_at=request.requested_at,
                            request_type=request.request_type, now=now,
                            new_customer=customer.created, settings=settings,
                            equipment_id=linked.get("equipment_id"))
    number = create_intervention(
        tx,
        NewIntervention(
            customer_id=customer.customer_id,
            contact_id=linked.get("contact_id", customer.contact_id),
            site_id=linked.get("site_id"), equipment_id=linked.get("equipment_id"),
            channel=request.channel, requested_at=request.requested_at,
            subject=request.subject, description=request.description, source=request.source,
            request_type=request.request_type, priority=priority,
            desired_from=request.desired_from, desired_to=request.desired_to,
            related_number=request.related_number, owner=customer.owner, sla=sla,
            inbound_first=first.direction == Direction.IN,
        ),
        now=now,
    )
    if not customer.created and "equipment_serial" not in request.links:
        machine = link_equipment(tx, number, customer.customer_id, request.serial_candidates)
        if machine is not None and tx.execute(
                "SELECT 1 FROM contract_equipment WHERE equipment_id = ? LIMIT 1",
                (machine,)).fetchone():
            # A contract lists the machine the mail named: the sweep plans the case
            # again, so that contract may be the one covering it.
            tx.execute("UPDATE interventions SET sla_planned_at = NULL WHERE number = ?",
                       (number,))
    add_participants(tx, number, [customer.email, *request.participants])
    if sla is not None:
        plan_opened_case(tx, number, sla, settings=settings)
    # Made just now with this message first: no second write of its row.
    append_message(tx, number, first, now=now, touch=False)
    if request.start_sequences:
        start_by_trigger(tx, number, request.request_type, now=now, settings=settings)
    if not request.acknowledge:
        return Opened(number)
    in_reply_to = [first.message_id] if first.message_id else []
    language = customer.language or request.language_hint or settings.mail.default_language
    type_name = ""
    if request.request_type:
        types = request.type_list or ask_type_list(tx)()
        type_name = types.name(request.request_type, language)
    skipped = acknowledge(tx, number, customer, subject=request.subject,
                          in_reply_to=in_reply_to, language=language, now=now,
                          settings=settings, refused=refused,
                          request_type=(request.request_type, type_name))
    return Opened(number, skipped)


def acknowledge(
    tx: WriteTx,
    number: int,
    customer: CustomerRef,
    *,
    subject: str,
    in_reply_to: list[str],
    language: str | None,
    now: datetime,
    settings: Settings,
    refused: Callable[[], AckSkipped | None] | None = None,
    request_type: tuple[str, str] = ("", ""),
) -> AckSkipped | None:
    """Queue the acknowledgement and return None; or, when it would go to one of our
    own addresses or over an hourly budget (tickets.ack_budget), queue nothing and
    return why. `refused`: the budget's answer, asked earlier in the unit;
    `request_type`: the case's type code and its name in the mail's language."""
    peer = _peer(customer, settings)
    if refused is None:
        refused = ask_ack_refused(tx, peer, now=now, settings=settings.mail)
    skipped = refused()
    if skipped is not None:
        log.warning("ack.skipped", intervention=number, recipient=customer.email,
                    counted_as=peer.address, reason=str(skipped))
        return skipped
    record_ack(tx, peer, now=now)
    enqueue_mail(
        tx,
        OutgoingMail(
            kind=OutboxKind.ACKNOWLEDGEMENT, recipient=customer.email, template="acknowledgement",
            language=language or settings.mail.default_language,
            context={"number": number, "tag": format_tag(number),
                     "subject": quotable(subject, MAX_QUOTED_SUBJECT_CHARS),
                     "customer_name": quotable(customer.name, MAX_QUOTED_NAME_CHARS),
                     "company_name": settings.mail.company_name,
                     "request_type": request_type[0], "request_type_name": request_type[1],
                     "in_reply_to": in_reply_to, "references": in_reply_to},
            intervention_number=number, thread_kind=MessageKind.ACKNOWLEDGEMENT,
        ),
        now=now, domain=own_domain(settings),
    )
    return None


# What an acknowledgement repeats of the sender's own words. A forged sender's display
# name and subject are the spammer's text: sent back to a third party, they would turn
# our acknowledgement into their advert. So: short, and no link a client would make.
MAX_QUOTED_SUBJECT_CHARS = 80
MAX_QUOTED_NAME_CHARS = 40
_LINKISH = re.compile(
    r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)\S*"       # scheme:// or www.
    # a bare domain.tld(/path) with a top-level domain mail clients turn into links
    r"|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|info|biz|io|co|me|xyz|top|site|online|shop"
    r"|store|club|click|link|app|dev|ru|cn|su|it|ro|de|uk|fr|es|eu|us|ly|tk|ml|ga|cf|gq)"
    r"\b(?:/\S*)?"
)


def quotable(text: str, max_chars: int) -> str:
    """`text` as an acknowledgement may quote it: links and domain names replaced by
    "[link]", cut to `max_chars` with an ellipsis. Linear in the text."""
    text = " ".join(text[: max_chars * 4].split())
    text = _LINKISH.sub("[link]", text)
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _peer(customer: CustomerRef, settings: Settings) -> Peer:
    """The customer as the acknowledgement budgets count it."""
    return peer_of(customer.email, settings.mail.support_addresses)


def own_domain(settings: Settings) -> str:
    """The domain our Message-IDs use: the first support address's."""
    return settings.mail.support_addresses[0].rpartition("@")[2]
