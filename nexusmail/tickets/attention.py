"""Why an intervention needs an operator: pure rules over the facts a query gathered.

Computed from data, never stored, so the list, the thread page and the JSON API always
agree with the assignments and replies as they are now.
"""

from __future__ import annotations

from enum import StrEnum

from nexusmail.tickets.models import AssignmentStatus, Status


class Attention(StrEnum):
    """Why an open intervention needs an operator (computed from data, never stored)."""

    REJECTED = "rejected"       # rejected, and nobody confirmed or is still to answer
    UNCLEAR = "unclear"         # a technician's reply could not be read as yes or no
    UNVERIFIED = "unverified"   # a reply to an assignment came from someone else
    UNASSIGNED = "unassigned"   # open, and nobody was ever assigned
    # closed, and the customer wrote again since: kept on the thread, not reopened by a
    # stray "thanks", but an operator must see it (it may be a new fault)
    MAIL_AFTER_CLOSE = "mail_after_close"
    # every confirmed technician reported done: an operator closes it or reopens it
    RESOLVED = "resolved"
    NOT_DONE = "not_done"           # a technician reported the job not finished
    HOURS_UNREAD = "hours_unread"   # a done report whose hours could not be read


def needs_attention(
    *, status: str, assignment_statuses: set[str], has_unverified_reply: bool,
    has_mail_after_close: bool = False, has_not_done_report: bool = False,
    has_hours_unread: bool = False,
) -> list[str]:
    """The Attention flags of an intervention, in a fixed order.

    A closed intervention needs no (re)assignment, so only an unverified reply or a
    customer's mail since it was closed still flags it: an operator should look.
    """
    flags: list[str] = []
    if status == Status.OPEN:
        decided_or_waiting = {AssignmentStatus.CONFIRMED, AssignmentStatus.PENDING}
        if (AssignmentStatus.REJECTED in assignment_statuses
                and not assignment_statuses & decided_or_waiting):
            flags.append(Attention.REJECTED)
        if AssignmentStatus.UNCLEAR in assignment_statuses:
            flags.append(Attention.UNCLEAR)
    if has_unverified_reply:
        flags.append(Attention.UNVERIFIED)
    if status == Status.OPEN and not assignment_statuses:
        flags.append(Attention.UNASSIGNED)
    if status == Status.CLOSED and has_mail_after_close:
        flags.append(Attention.MAIL_AFTER_CLOSE)
    if status == Status.RESOLVED:
        flags.append(Attention.RESOLVED)
    if status != Status.CLOSED and has_not_done_report:
        flags.append(Attention.NOT_DONE)
    if has_hours_unread:
        flags.append(Attention.HOURS_UNREAD)
    return flags
