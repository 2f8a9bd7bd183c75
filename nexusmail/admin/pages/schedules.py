"""Service schedules on the admin page: the list, and one schedule with its next dates.

Read-only: schedules are made and changed through the JSON API or the CLI
(`nexusmail schedule ...`); the page shows what they will open and when.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages
from nexusmail.i18n import msg
from nexusmail.tickets import schedule_queries
from nexusmail.tickets.recurrence import local_date

PREVIEW_COUNT = 12


def schedule_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/schedules", h.schedules, methods=["GET"]),
        Route("/schedules/{id:int}", h.schedule, methods=["GET"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def schedules(self, request: Request) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            items = await schedule_queries.list_schedules(conn)
        return self.p.render(request, "schedules.html.j2", schedules=items)

    async def schedule(self, request: Request) -> Response:
        await self.p.operator(request)
        schedule_id = int(request.path_params["id"])
        services = self.p.services
        today = local_date(services.clock.now(), services.settings.scheduler.timezone)
        detail = preview = None
        if schedule_id <= MAX_ID:
            async with services.store.read() as conn:
                detail = await schedule_queries.get_schedule(conn, schedule_id)
                preview = await schedule_queries.preview(conn, schedule_id, today=today,
                                                         count=PREVIEW_COUNT)
        if detail is None or preview is None:
            raise PageError(404, msg("Schedule {id} does not exist.", id=schedule_id))
        return self.p.render(request, "schedule.html.j2", s=detail, preview=preview,
                             today=today.isoformat())
