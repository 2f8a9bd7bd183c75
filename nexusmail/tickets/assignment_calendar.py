"""The calendar entry an assignment mail carries: the case's desired period, for the
technician's calendar (dispatch/calendar_invite.py turns it into the .ics part).

Kept as plain JSON on the outbox row, like the rest of a mail's context, so a mail
sent again after a crash carries the same event. The UID is the assignment's: the
invitation (REQUEST) and its withdrawal when the technician turns the job down
(CANCEL, a higher SEQUENCE) name the same event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

REQUEST, CANCEL = "REQUEST", "CANCEL"


def visit_window(context: Mapping[str, Any], *, assignment_id: int, domain: str,
                 organizer: str, attendee: str, method: str = REQUEST) -> dict[str, Any] | None:
    """The calendar entry for an assignment mail of the case in `context` (see
    tickets.assignments.assignment_context), or None when the case has no desired
    period (nothing to put in a calendar)."""
    first_text = context.get("desired_from") or context.get("desired_to")
    last_text = context.get("desired_to") or context.get("desired_from")
    if not first_text or not last_text:
        return None
    first, last = date.fromisoformat(str(first_text)), date.fromisoformat(str(last_text))
    site = context.get("site") or {}
    customer = context.get("customer") or {}
    contact = context.get("contact") or {}
    location = site.get("address") or customer.get("address") or ""
    people = [customer.get("name") or "", contact.get("name") or "",
              contact.get("phone") or customer.get("phone") or ""]
    return {
        "method": method, "uid": f"assignment-{assignment_id}@{domain}",
        "sequence": 0 if method == REQUEST else 1,
        "first_day": first.isoformat(), "last_day": max(first, last).isoformat(),
        "summary": f"{context.get('tag', '')} {context.get('subject', '')}".strip(),
        "location": str(location), "description": " · ".join(p for p in people if p),
        "organizer": organizer, "attendee": attendee,
    }
