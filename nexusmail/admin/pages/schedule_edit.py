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
from nexusmail.admin.api.schedule_models import MAX_COUNT, MAX_EVERY, MAX_LEAD_DAYS
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.admin.pages.form_values import day, whole_number
from nexusmail.i18n import message_of, msg
from nexusmail.tickets import schedule_queries
from nexusmail.tickets.recurrence import DayRule, Interval, local_date
from nexusmail.tickets.schedules import InvalidSchedule, update_schedule

log = structlog.get_logger(__name__)



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


def _wanted(form: FormData) -> dict[str, Any]:
    """The form's values, checked one by one (the rule as a whole is checked on save)."""
    try:
        interval = Interval(form_text(form, "interval", 20))
        day_rule = DayRule(form_text(form, "day_rule", 20) or DayRule.SAME_DAY)
    except ValueError:
        raise PageError(422, msg("Choose one of the rules listed.")) from None
    subject, first_date = form_text(form, "subject", 500), day(form, "first_date")
    if not subject:
        raise PageError(422, msg("A schedule needs a subject."))
    if first_date is None:
        raise PageError(422, msg("{field}: should be a date", field="first_date"))
    return {
        "subject": subject, "description": form_text(form, "description"),
        "contract_ref": form_text(form, "contract_ref", 100), "interval": interval,
        "every": whole_number(form, "every", 1, MAX_EVERY) or 1, "day_rule": day_rule,
        "first_date": first_date, "until": day(form, "until"),
        "count": whole_number(form, "count", 1, MAX_COUNT),
        "lead_days": whole_number(form, "lead_days", 0, MAX_LEAD_DAYS) or 0,
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
