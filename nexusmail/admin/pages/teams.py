"""Teams on the admin page: the list with their members, a new team, and changing who
is in one (`/teams`, `/teams/{id}`). Assigning a team and its "first confirmation takes
the job" rule live in tickets.teams; the members' jobs already mailed stay theirs."""

from __future__ import annotations

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import msg
from nexusmail.tickets import queries
from nexusmail.tickets.teams import (
    MAX_TEAM_MEMBERS,
    MAX_TEAM_NAME_CHARS,
    TeamView,
    create_team,
    list_teams,
    set_team_members,
)

log = structlog.get_logger(__name__)

# The member boxes of the form: one per employee, so a firm's whole staff fits.
_MAX_FIELDS = 10 + 2000


def team_page_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/teams", h.index, methods=["GET"]),
        Route("/teams", h.add, methods=["POST"]),
        Route("/teams/{id:int}", h.card, methods=["GET"]),
        Route("/teams/{id:int}", h.save, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def index(self, request: Request) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            teams = await list_teams(conn)
            employees = await queries.list_employees(conn)
        return self.p.render(request, "teams.html.j2", teams=teams,
                             employees=[e for e in employees if e["active"]])

    async def card(self, request: Request) -> Response:
        await self.p.operator(request)
        team = await self._team(request)
        async with self.p.services.store.read() as conn:
            employees = await queries.list_employees(conn)
        # Retired members stay listed (ticked) until someone takes them out.
        shown = [e for e in employees if e["active"] or e["email"] in team["members"]]
        return self.p.render(request, "team.html.j2", team=team, employees=shown)

    async def add(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        form = await _form(request)
        name = form_text(form, "name", MAX_TEAM_NAME_CHARS + 1)
        if not name or len(name) > MAX_TEAM_NAME_CHARS:
            raise PageError(422, msg("A team needs a name of at most {n} characters.",
                                     n=MAX_TEAM_NAME_CHARS))
        members = _members(form)
        now = self.p.services.clock.now()
        team_id = await self.p.services.store.write(
            lambda tx: create_team(tx, name, members, now=now))
        log.info("admin.team_created", team=name, members=len(members),
                 operator=operator.email)
        return redirect(f"/teams/{team_id}", msg("Team {name} saved.", name=name), request)

    async def save(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        team = await self._team(request)
        members = _members(await _form(request))
        await self.p.services.store.write(
            lambda tx: set_team_members(tx, team["name"], members))
        log.info("admin.team_members_set", team=team["name"], members=len(members),
                 operator=operator.email)
        return redirect(f"/teams/{team['id']}", msg("Team {name} saved.", name=team["name"]),
                        request)

    async def _team(self, request: Request) -> TeamView:
        team_id = int(request.path_params["id"])
        found = []
        if 0 < team_id <= MAX_ID:
            async with self.p.services.store.read() as conn:
                found = [t for t in await list_teams(conn) if t["id"] == team_id]
        if not found:
            raise PageError(404, msg("Team {id} does not exist.", id=team_id))
        return found[0]


def _members(form: FormData) -> list[str]:
    """The ticked employees' addresses: at least one, at most the team limit."""
    members = [value for value in form.getlist("member") if isinstance(value, str)]
    if not members:
        raise PageError(422, msg("Tick at least one member."))
    if len(members) > MAX_TEAM_MEMBERS:
        raise PageError(422, msg("A team has at most {n} members.", n=MAX_TEAM_MEMBERS))
    return members


async def _form(request: Request) -> FormData:
    async with request.form(max_files=0, max_fields=_MAX_FIELDS) as form:
        check_csrf(request, form)
        return form
