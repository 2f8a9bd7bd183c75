"""Service schedules on the admin page: the list, one schedule with its next dates,
adding one, and pausing or resuming it (editing one: pages.schedule_edit)."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.api.schedule_models import MAX_EVERY, MAX_LEAD_DAYS
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.admin.pages.form_values import address, day, whole_number
from nexusmail.i18n import message_of, msg
from nexusmail.tickets import queries, schedule_queries
from nexusmail.tickets.recurrence import DayRule, Interval, local_date
from nexusmail.tickets.schedules import (
    InvalidSchedule,
    ScheduleSpec,
    create_schedule,
    update_schedule,
)

log = structlog.get_logger(__name__)

PREVIEW_COUNT = 12


def schedule_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/schedules", h.schedules, methods=["GET"]),
        Route("/schedules/{id:int}", h.schedule, methods=["GET"]),
        Route("/schedules", h.add, methods=["POST"]),
        Route("/schedules/{id:int}/pause", h.pause, methods=["POST"]),
        Route("/schedules/{id:int}/resume", h.resume, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def schedules(self, request: Request) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            items = await schedule_queries.list_schedules(conn)
            employees = [e for e in await queries.list_employees(conn) if e["active"]]
        return self.p.render(request, "schedules.html.j2", schedules=items,
                             employees=employees, intervals=[i.value for i in Interval])

    async def schedule(self, request: Request) -> Response:
        await self.p.operator(request)
        schedule_id = int(request.path_params["id"])
        services = self.p.services
        today = local_date(services.clock.now(), services.settings.scheduler.timezone)
        detail = preview = None
        employees: list[Any] = []
        if schedule_id <= MAX_ID:
            async with services.store.read() as conn:
                detail = await schedule_queries.get_schedule(conn, schedule_id)
                preview = await schedule_queries.preview(conn, schedule_id, today=today,
                                                         count=PREVIEW_COUNT)
            employees = [e for e in await queries.list_employees(conn) if e["active"]]
        if detail is None or preview is None:
            raise PageError(404, msg("Schedule {id} does not exist.", id=schedule_id))
        return self.p.render(request, "schedule.html.j2", s=detail, preview=preview,
                             today=today.isoformat(), employees=employees,
                             intervals=[i.value for i in Interval],
                             day_rules=[r.value for r in DayRule])

    async def add(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        async with request.form(max_files=0, max_fields=60) as form:
            check_csrf(request, form)
            try:
                interval = Interval(form_text(form, "interval", 20))
            except ValueError:
                raise PageError(422, msg("Choose one of the rules listed.")) from None
            first_date = day(form, "first_date")
            if first_date is None:
                raise PageError(422, msg("{field}: should be a date", field="first_date"))
            spec = ScheduleSpec(
                customer_email=address(form, "customer_email"),
                customer_name=form_text(form, "customer_name", 200),
                subject=form_text(form, "subject", 500),
                description=form_text(form, "description"), interval=interval,
                first_date=first_date,
                lead_days=whole_number(form, "lead_days", 0, MAX_LEAD_DAYS) or 0,
                every=whole_number(form, "every", 1, MAX_EVERY) or 1,
                contract_ref=form_text(form, "contract_ref", 100),
                assignees=tuple(a for a in form.getlist("assignees") if isinstance(a, str)))
        if not spec.subject:
            raise PageError(422, msg("A schedule needs a subject."))
        services = self.p.services
        now = services.clock.now()
        today = local_date(now, services.settings.scheduler.timezone)
        try:
            schedule_id = await services.store.write(
                lambda tx: create_schedule(tx, spec, today=today, now=now))
        except InvalidSchedule as exc:
            raise PageError(422, message_of(exc)) from None
        log.info("admin.schedule_added", schedule_id=schedule_id, operator=operator.email)
        return redirect(f"/schedules/{schedule_id}", msg("Schedule added."), request)

    async def pause(self, request: Request) -> Response:
        return await self._set_active(request, active=False)

    async def resume(self, request: Request) -> Response:
        return await self._set_active(request, active=True)

    async def _set_active(self, request: Request, *, active: bool) -> Response:
        operator = await self.p.operator(request)
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
        schedule_id = int(request.path_params["id"])
        services = self.p.services
        now = services.clock.now()
        today = local_date(now, services.settings.scheduler.timezone)
        if schedule_id > MAX_ID:
            raise PageError(404, msg("Schedule {id} does not exist.", id=schedule_id))
        try:
            await services.store.write(lambda tx: update_schedule(
                tx, schedule_id, {"active": active}, today=today, now=now))
        except LookupError:
            raise PageError(404, msg("Schedule {id} does not exist.", id=schedule_id)) from None
        except InvalidSchedule as exc:
            raise PageError(422, message_of(exc)) from None
        log.info("admin.schedule_active", schedule_id=schedule_id, active=active,
                 operator=operator.email)
        return redirect(f"/schedules/{schedule_id}",
                        msg("Schedule resumed.") if active else msg("Schedule paused."), request)
