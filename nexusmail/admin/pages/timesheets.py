"""The monthly timesheet on the admin page: hours per technician per day, totals per
customer, and the month as a CSV download for billing.

`GET /timesheets?month=YYYY-MM` (default: this month in `[scheduler] timezone`) and
`GET /timesheets.csv?month=YYYY-MM` (admin.timesheet_csv). Work and travel are kept
apart, as technicians report them; replaced reports are not counted.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.pages.base import PageError, Pages
from nexusmail.admin.timesheet_csv import timesheet_csv
from nexusmail.i18n import msg
from nexusmail.tickets.activity_queries import TimesheetRow, timesheet
from nexusmail.tickets.recurrence import local_date


@dataclass
class TechnicianMonth:
    email: str
    per_day: dict[int, int] = field(default_factory=dict)   # day of month -> work minutes
    work: int = 0
    travel: int = 0


@dataclass
class CustomerMonth:
    name: str
    work: int = 0
    travel: int = 0


def month_tables(rows: Sequence[TimesheetRow]
                 ) -> tuple[list[TechnicianMonth], list[CustomerMonth]]:
    """Minutes per technician per day and per customer, both sorted by name."""
    technicians: dict[str, TechnicianMonth] = {}
    customers: dict[int, CustomerMonth] = {}
    for row in rows:
        work = round((row["hours"] or 0) * 60)
        travel = round((row["travel_hours"] or 0) * 60)
        person = technicians.setdefault(row["employee_email"],
                                        TechnicianMonth(row["employee_email"]))
        day = int(row["date"][8:10])
        person.per_day[day] = person.per_day.get(day, 0) + work
        person.work += work
        person.travel += travel
        customer = customers.setdefault(row["customer_id"], CustomerMonth(row["customer_name"]))
        customer.work += work
        customer.travel += travel
    return (sorted(technicians.values(), key=lambda t: t.email),
            sorted(customers.values(), key=lambda c: c.name.lower()))


def timesheet_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/timesheets", h.month, methods=["GET"]),
            Route("/timesheets.csv", h.month_csv, methods=["GET"])]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    def _month(self, request: Request) -> tuple[date, date]:
        value = request.query_params.get("month", "")
        if not value:
            today = local_date(self.p.services.clock.now(),
                               self.p.services.settings.scheduler.timezone)
            value = today.isoformat()[:7]
        try:
            first = date.fromisoformat(value + "-01")
        except ValueError:
            raise PageError(422, msg("The month is written as YYYY-MM.")) from None
        return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])

    async def _rows(self, request: Request) -> tuple[date, date, list[TimesheetRow]]:
        operator = await self.p.operator(request)
        first, last = self._month(request)
        async with self.p.services.store.read() as conn:
            rows = await timesheet(conn, date_from=first, date_to=last,
                                   owner=operator.owner_limit)
        return first, last, rows

    async def month(self, request: Request) -> Response:
        first, last, rows = await self._rows(request)
        technicians, customers = month_tables(rows)
        previous = (first - timedelta(days=1)).isoformat()[:7]
        following = (last + timedelta(days=1)).isoformat()[:7]
        return self.p.render(request, "timesheets.html.j2", month=first.isoformat()[:7],
                             days=list(range(1, last.day + 1)), technicians=technicians,
                             customers=customers, previous=previous, following=following)

    async def month_csv(self, request: Request) -> Response:
        _, _, rows = await self._rows(request)
        return timesheet_csv(rows, delimiter=self.p.services.settings.export.csv_delimiter)

