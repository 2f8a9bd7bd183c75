"""Activities and timesheets in the JSON API.

- `POST /api/v1/interventions/{number}/activities` `{"employee_email", "kind", "hours",
  "text", "date"?}` → 201 the activity (tickets.activity_queries.ActivityView); `kind`
  one of work | phone | visit | remote | workshop | travel, `hours` more than 0 and at
  most 24 (kept to the minute), `date` YYYY-MM-DD (default: today in
  `[scheduler] timezone`). 404 unknown intervention, 409 closed, 422 naming the field
  (an unknown employee too).
- `PATCH /api/v1/activities/{id}` `{"hours"?, "travel_hours"?}` → 200 the activity:
  an operator fills in the hours a report left unread (which clears the intervention's
  `hours_unread` flag) or corrects a misread; a note on the thread says who changed
  what. 409 for a report replaced by a later one.
- `GET /api/v1/activities?employee=&customer=&from=&to=` → `{"items": [activity...]}`,
  each with `customer_id`, `customer_name` and `subject` too; current activities only (a
  report replaced by a later one is left out). `customer` is an id, an address or part
  of the name; `from`/`to` are YYYY-MM-DD, inclusive.
  With `format=csv` or `Accept: text/csv`: the same rows as CSV for a spreadsheet
  (admin.timesheet_csv).
"""

from __future__ import annotations

import datetime as dt

import structlog
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import (
    ApiError,
    ApiServices,
    authenticate,
    parse_body,
    path_id,
    read_body,
)
from nexusmail.admin.api.models import _Body
from nexusmail.admin.timesheet_csv import timesheet_csv
from nexusmail.tickets import queries
from nexusmail.tickets.activities import (
    MAX_ACTIVITY_MINUTES,
    MAX_ACTIVITY_TEXT,
    ActivityChange,
    ActivityKind,
    NewActivity,
    add_activity,
    correct_activity,
)
from nexusmail.tickets.activity_queries import activity, timesheet
from nexusmail.tickets.cases import NotFound
from nexusmail.tickets.recurrence import local_date

log = structlog.get_logger(__name__)

_MAX_FILTER_CHARS = 320


class ActivityIn(_Body):
    employee_email: str = Field(min_length=3, max_length=_MAX_FILTER_CHARS)
    kind: ActivityKind = ActivityKind.WORK
    hours: float = Field(gt=0, le=MAX_ACTIVITY_MINUTES / 60)
    text: str = Field("", max_length=MAX_ACTIVITY_TEXT)
    date: dt.date | None = None  # the module, not the type: the field is named date


class ActivityPatchIn(_Body):
    hours: float | None = Field(None, ge=0, le=MAX_ACTIVITY_MINUTES / 60)
    travel_hours: float | None = Field(None, ge=0, le=MAX_ACTIVITY_MINUTES / 60)


def activity_routes(services: ApiServices) -> list[Route]:
    h = _Activities(services)
    return [
        Route("/interventions/{number:int}/activities", h.add, methods=["POST"]),
        Route("/activities/{id:int}", h.correct, methods=["PATCH"]),
        Route("/activities", h.list, methods=["GET"]),
    ]


class _Activities:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def add(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        body = parse_body(self.s, ActivityIn, await read_body(request))
        async with self.s.store.read() as conn:
            if await queries.get_intervention_status(conn, number) is None:
                raise ApiError(404, f"intervention {number} does not exist")
            known = await conn.execute_fetchall(
                "SELECT 1 FROM employees WHERE email = ?",
                (body.employee_email.strip().lower(),))
        if not list(known):
            raise ApiError(422, f"employee_email: no employee with address "
                                f"{body.employee_email}")
        now = self.s.clock.now()
        new = NewActivity(
            employee_email=body.employee_email, kind=body.kind,
            minutes=round(body.hours * 60), text=body.text,
            day=body.date or local_date(now, self.s.settings.scheduler.timezone),
            author=token.author)
        try:
            activity_id = await self.s.store.write(
                lambda tx: add_activity(tx, number, new, now=now))
        except NotFound as exc:  # the employee went away in between
            raise ApiError(422, f"employee_email: {exc}") from None
        log.info("api.activity_added", intervention=number, activity_id=activity_id,
                 kind=str(body.kind), minutes=new.minutes, token_name=token.name)
        async with self.s.store.read() as conn:
            added = await activity(conn, activity_id)
        return JSONResponse(added, status_code=201)

    async def correct(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        activity_id = path_id(request, "id")
        body = parse_body(self.s, ActivityPatchIn, await read_body(request))
        change = ActivityChange(
            work_minutes=None if body.hours is None else round(body.hours * 60),
            travel_minutes=None if body.travel_hours is None else round(body.travel_hours * 60),
            author=token.author)
        now = self.s.clock.now()
        number = await self.s.store.write(
            lambda tx: correct_activity(tx, activity_id, change, now=now))
        log.info("api.activity_corrected", intervention=number, activity_id=activity_id,
                 token_name=token.name)
        async with self.s.store.read() as conn:
            corrected = await activity(conn, activity_id)
        return JSONResponse(corrected)

    async def list(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        params = request.query_params
        for name in ("employee", "customer"):
            if len(params.get(name) or "") > _MAX_FILTER_CHARS:
                raise ApiError(422, f"{name}: is longer than {_MAX_FILTER_CHARS} characters")
        output = params.get("format") or ""
        if output not in ("", "json", "csv"):
            raise ApiError(422, "format: should be json or csv")
        async with self.s.store.read() as conn:
            rows = await timesheet(
                conn, employee=params.get("employee") or None,
                customer=params.get("customer") or None,
                date_from=_day(params.get("from"), "from"), date_to=_day(params.get("to"), "to"),
                owner=token.operator.owner_limit if token.operator else None)
        wants_csv = output == "csv" or (
            not output and "text/csv" in request.headers.get("accept", ""))
        if wants_csv:
            return timesheet_csv(rows, delimiter=self.s.settings.export.csv_delimiter)
        return JSONResponse({"items": rows})


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"{name}: should be a date as YYYY-MM-DD") from None
