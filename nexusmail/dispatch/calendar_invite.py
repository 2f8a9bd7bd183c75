"""The calendar part of an assignment mail: an iCalendar invitation (RFC 5545, with the
iTIP methods of RFC 5546) that the technician's phone or Outlook offers to add.

The event is the case's desired period, as whole days: a visit is agreed within it,
not at a time the office sets. Its UID is the assignment's, so a later mail with
METHOD:CANCEL and the same UID (sent when the technician turns the job down) removes
it from their calendar again. Built with the icalendar library: folding, escaping and
the date forms are its business.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from email.message import Message
from typing import Any

from nexusmail import __version__

METHODS = frozenset({"REQUEST", "CANCEL"})


def invitation(calendar: Mapping[str, Any], *, stamp: datetime) -> bytes:
    """The .ics bytes for `calendar` (an outbox context's entry, see
    tickets.assignment_calendar.visit_window); ValueError when unusable."""
    method = str(calendar["method"])
    if method not in METHODS:
        raise ValueError(f"calendar method {method!r} is not one of {sorted(METHODS)}")
    first = date.fromisoformat(str(calendar["first_day"]))
    last = date.fromisoformat(str(calendar["last_day"]))
    if last < first:
        raise ValueError("the calendar event ends before it starts")
    # Imported on the first invitation, not with the daemon: 3.5 MB of memory that a
    # firm which never assigns a job by mail does not need.
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", f"-//nexusmail//{__version__}//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    event = icalendar.Event()
    event.add("uid", str(calendar["uid"]))
    event.add("sequence", int(calendar["sequence"]))
    event.add("dtstamp", stamp)
    event.add("dtstart", first)
    event.add("dtend", last + timedelta(days=1))  # DTEND of an all-day event is exclusive
    event.add("summary", str(calendar["summary"]))
    if calendar.get("location"):
        event.add("location", str(calendar["location"]))
    if calendar.get("description"):
        event.add("description", str(calendar["description"]))
    event.add("organizer", f"mailto:{calendar['organizer']}")
    event.add("attendee", f"mailto:{calendar['attendee']}",
              parameters={"ROLE": "REQ-PARTICIPANT", "RSVP": "FALSE"})
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("transp", "TRANSPARENT")  # a window for the visit, not a busy block
    cal.add_component(event)
    return bytes(cal.to_ical())


def invitation_part(calendar: Mapping[str, Any], *, stamp: datetime) -> Message:
    """The MIME part: text/calendar with the method, as calendar clients look for it."""
    part = Message()
    part["Content-Type"] = f'text/calendar; charset="utf-8"; method={calendar["method"]}'
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(_base64_lines(invitation(calendar, stamp=stamp)))
    return part


def _base64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return "\n".join(encoded[i:i + 76] for i in range(0, len(encoded), 76)) + "\n"
