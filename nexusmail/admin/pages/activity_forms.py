"""The thread page's time forms: an operator records an activity (a call, a visit, a
remote session, workshop or travel time) or fills in the hours a report left unread.

- `POST /interventions/{n}/activities` (employee, kind, hours, date, text)
- `POST /activities/{id}/hours` (hours): sets the work time of an activity

Hours are typed as people write them: "1,5", "1.5", "2h30", "90 min", "2 ore e mezza"
(read by mail.hours, as in technicians' reports).
"""

from __future__ import annotations

from datetime import date

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import msg
from nexusmail.mail.hours import read_hours
from nexusmail.tickets.activities import (
    ActivityChange,
    ActivityKind,
    NewActivity,
    add_activity,
    correct_activity,
)
from nexusmail.tickets.recurrence import local_date

log = structlog.get_logger(__name__)


def activity_form_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/interventions/{number:int}/activities", h.add, methods=["POST"]),
            Route("/activities/{id:int}/hours", h.hours, methods=["POST"])]


def typed_minutes(text: str) -> int | None:
    """Minutes from hours as typed: a bare number is hours ("1,5"), anything else is
    read like a report ("2h30", "90 min"); None when nothing can be read."""
    cleaned = text.strip().replace(",", ".")
    try:
        value = float(cleaned)
    except ValueError:
        return read_hours(text).work_minutes
    return round(value * 60) if 0 < value < 100 else None


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def add(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = int(request.path_params["number"])
        if number > MAX_ID:
            raise PageError(404, msg("There is no such page."))
        async with request.form(max_files=0, max_fields=10) as form:
            check_csrf(request, form)
            email = form_text(form, "employee", 320)
            kind = form_text(form, "kind", 20)
            typed = form_text(form, "hours", 40)
            day = form_text(form, "date", 10)
            text = form_text(form, "text", 10_000)
        minutes = typed_minutes(typed)
        if minutes is None:
            raise PageError(422, msg("hours: could not read {typed!r} as hours", typed=typed))
        if kind not in {k.value for k in ActivityKind}:
            raise PageError(422, msg("kind: should be one of the listed kinds"))
        services = self.p.services
        now = services.clock.now()
        try:
            when = date.fromisoformat(day) if day else local_date(
                now, services.settings.scheduler.timezone)
        except ValueError:
            raise PageError(422, msg("date: should be a date")) from None
        new = NewActivity(employee_email=email, kind=ActivityKind(kind), minutes=minutes,
                          text=text, day=when, author=f"operator:{operator.email}")
        activity_id = await services.store.write(lambda tx: add_activity(tx, number, new,
                                                                         now=now))
        log.info("admin.activity_added", intervention=number, activity_id=activity_id,
                 minutes=minutes, operator=operator.email)
        return redirect(f"/interventions/{number}", msg("Time recorded."), request)

    async def hours(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        activity_id = int(request.path_params["id"])
        if activity_id > MAX_ID:
            raise PageError(404, msg("There is no such page."))
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            typed = form_text(form, "hours", 40)
        minutes = typed_minutes(typed)
        if minutes is None:
            raise PageError(422, msg("hours: could not read {typed!r} as hours", typed=typed))
        now = self.p.services.clock.now()
        change = ActivityChange(work_minutes=minutes, author=f"operator:{operator.email}")
        number = await self.p.services.store.write(
            lambda tx: correct_activity(tx, activity_id, change, now=now))
        log.info("admin.activity_corrected", intervention=number, activity_id=activity_id,
                 minutes=minutes, operator=operator.email)
        return redirect(f"/interventions/{number}", msg("Time recorded."), request)
