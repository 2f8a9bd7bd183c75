"""Editing a service schedule on the admin page: its subject, description, contract,
who each occurrence goes to, and its rule (interval, every, day of the month, first
date, end by date or count, days ahead). Only what the form changes is written: a
change of the rule restarts the schedule's position from today (nothing opens twice,
nothing is caught up), while a new subject or assignee keeps it."""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import message_of, msg
from nexusmail.tickets import schedule_queries
from nexusmail.tickets.recurrence import DayRule, Interval, local_date
from nexusmail.tickets.schedules import InvalidSchedule, update_schedule

log = structlog.get_logger(__name__)

MAX_EVERY = 120
MAX_LEAD_DAYS = 365


def schedule_edit_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/schedules/{id:int}", h.save, methods=["POST"])]


def _current(detail: Any) -> dict[str, Any]:
    """The editable fields of a stored schedule, as the form's values compare."""
    return {
        "subject": detail["subject"], "description": detail["description"],
        "contract_ref": detail["contract_ref"], "interval": Interval(detail["interval"]),
        "every": detail["every"], "day_rule": DayRule(detail["day_rule"]),
        "first_date": date.fromisoformat(detail["first_date"]),
        "until": date.fromisoformat(detail["until"]) if detail["until"] else None,
        "count": detail["count"], "lead_days": detail["lead_days"],
        "assignees": tuple(detail["assignees"]),
    }


def _whole(form: FormData, name: str, low: int, high: int) -> int | None:
    text = form_text(form, name, 10)
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise PageError(422, msg("{field}: should be a whole number from {low} to {high}",
                                 field=name, low=low, high=high))
    return int(text)


def _day(form: FormData, name: str) -> date | None:
    text = form_text(form, name, 10)
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise PageError(422, msg("{field}: should be a date", field=name)) from None


def _wanted(form: FormData) -> dict[str, Any]:
    """The form's values, checked one by one (the rule as a whole is checked on save)."""
    try:
        interval = Interval(form_text(form, "interval", 20))
        day_rule = DayRule(form_text(form, "day_rule", 20) or DayRule.SAME_DAY)
    except ValueError:
        raise PageError(422, msg("Choose one of the rules listed.")) from None
    subject, first_date = form_text(form, "subject", 500), _day(form, "first_date")
    if not subject:
        raise PageError(422, msg("A schedule needs a subject."))
    if first_date is None:
        raise PageError(422, msg("{field}: should be a date", field="first_date"))
    return {
        "subject": subject, "description": form_text(form, "description"),
        "contract_ref": form_text(form, "contract_ref", 100), "interval": interval,
        "every": _whole(form, "every", 1, MAX_EVERY) or 1, "day_rule": day_rule,
        "first_date": first_date, "until": _day(form, "until"),
        "count": _whole(form, "count", 1, 10_000),
        "lead_days": _whole(form, "lead_days", 0, MAX_LEAD_DAYS) or 0,
        "assignees": tuple(a for a in form.getlist("assignees") if isinstance(a, str)),
    }


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def save(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        schedule_id = int(request.path_params["id"])
        async with request.form(max_files=0, max_fields=300) as form:
            check_csrf(request, form)
            wanted = _wanted(form)
        services = self.p.services
        detail = None
        if schedule_id <= MAX_ID:
            async with services.store.read() as conn:
                detail = await schedule_queries.get_schedule(conn, schedule_id)
        if detail is None:
            raise PageError(404, msg("Schedule {id} does not exist.", id=schedule_id))
        current = _current(detail)
        changes = {name: value for name, value in wanted.items() if value != current[name]}
        if changes:
            now = services.clock.now()
            today = local_date(now, services.settings.scheduler.timezone)
            try:
                await services.store.write(lambda tx: update_schedule(
                    tx, schedule_id, changes, today=today, now=now))
            except InvalidSchedule as exc:
                raise PageError(422, message_of(exc)) from None
        log.info("admin.schedule_edited", schedule_id=schedule_id, fields=sorted(changes),
                 operator=operator.email)
        return redirect(f"/schedules/{schedule_id}", msg("Schedule saved."), request)
