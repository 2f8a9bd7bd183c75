"""Service-schedule routes of the JSON API.

- `POST /api/v1/schedules` `{customer_email, subject, interval, first_date, lead_days,
  customer_name?, description?, every?, day_rule?, until?, count?, assignees?,
  request_type?, contract_ref?}` → 201 the schedule (see
  tickets.schedule_queries.ScheduleDetail); `interval` is weekly | monthly | quarterly
  | yearly, `day_rule` same_day (default) | last_day | nth_weekday. 422 names the
  field: unknown or inactive assignee, until before first_date, until with count...
- `GET /api/v1/schedules` → `{"items": [schedule...]}`.
- `GET /api/v1/schedules/{id}` → the schedule with `recent`, its latest handled
  occurrences (opened or skipped).
- `PATCH /api/v1/schedules/{id}` with any of the fields above plus `active` → 200 the
  schedule. `{"active": false}` pauses, `{"active": true}` resumes from today (a
  pause's occurrences are not caught up). A change of the dates restarts from today;
  an occurrence already opened is never opened again.
- `GET /api/v1/schedules/{id}/occurrences?count=12` (1..500) → `[{date, opens_on,
  intervention_number|null}]`, the next dates from today.
"""

from __future__ import annotations

from typing import TypeVar

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import (
    ApiError,
    ApiServices,
    authenticate,
    int_param,
    parse_body,
    path_id,
    read_body,
)
from nexusmail.admin.api.schedule_models import ScheduleIn, SchedulePatch
from nexusmail.tickets import schedule_queries
from nexusmail.tickets.recurrence import local_date
from nexusmail.tickets.schedules import InvalidSchedule, create_schedule, update_schedule
from nexusmail.tickets.store import WriteFn

log = structlog.get_logger(__name__)

DEFAULT_PREVIEW = 12
T = TypeVar("T")


def schedule_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/schedules", h.list_schedules, methods=["GET"]),
        Route("/schedules", h.create, methods=["POST"]),
        Route("/schedules/{id:int}", h.get, methods=["GET"]),
        Route("/schedules/{id:int}", h.patch, methods=["PATCH"]),
        Route("/schedules/{id:int}/occurrences", h.occurrences, methods=["GET"]),
    ]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def list_schedules(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            items = await schedule_queries.list_schedules(conn)
        return JSONResponse({"items": items})

    async def create(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        body = parse_body(self.s, ScheduleIn, await read_body(request))
        now = self.s.clock.now()
        today = local_date(now, self.s.settings.scheduler.timezone)
        spec = body.spec()
        schedule_id = await self._write(
            lambda tx: create_schedule(tx, spec, today=today, now=now))
        log.info("api.schedule_created", schedule_id=schedule_id, token_name=token.name)
        return JSONResponse(await self._detail(schedule_id), status_code=201,
                            headers={"Location": f"/api/v1/schedules/{schedule_id}"})

    async def get(self, request: Request) -> Response:
        await authenticate(self.s, request)
        return JSONResponse(await self._detail(path_id(request, "id")))

    async def patch(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        schedule_id = path_id(request, "id")
        changes = parse_body(self.s, SchedulePatch, await read_body(request)).changes()
        if not changes:
            raise ApiError(422, "body: send at least one field to change")
        now = self.s.clock.now()
        today = local_date(now, self.s.settings.scheduler.timezone)
        await self._write(lambda tx: update_schedule(tx, schedule_id, changes, today=today,
                                                     now=now))
        log.info("api.schedule_updated", schedule_id=schedule_id, fields=sorted(changes),
                 token_name=token.name)
        return JSONResponse(await self._detail(schedule_id))

    async def occurrences(self, request: Request) -> Response:
        await authenticate(self.s, request)
        schedule_id = path_id(request, "id")
        count = int_param(request.query_params.get("count"), "count", default=DEFAULT_PREVIEW,
                          low=1, high=schedule_queries.MAX_PREVIEW)
        today = local_date(self.s.clock.now(), self.s.settings.scheduler.timezone)
        async with self.s.store.read() as conn:
            items = await schedule_queries.preview(conn, schedule_id, today=today, count=count)
        if items is None:
            raise ApiError(404, f"schedule {schedule_id} does not exist")
        return JSONResponse(items)

    async def _write(self, fn: WriteFn[T]) -> T:
        try:
            return await self.s.store.write(fn)
        except InvalidSchedule as exc:
            raise ApiError(422, str(exc)) from None

    async def _detail(self, schedule_id: int) -> schedule_queries.ScheduleDetail:
        async with self.s.store.read() as conn:
            detail = await schedule_queries.get_schedule(conn, schedule_id)
        if detail is None:
            raise ApiError(404, f"schedule {schedule_id} does not exist")
        return detail
