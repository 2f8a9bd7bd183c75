"""Team routes of the JSON API.

- `POST /api/v1/teams` `{"name": ..., "members": ["luca@firm.test", ...]}` → 201 the
  team `{id, name, members, created_at}`; 404 an address that is no employee; 409 the
  name is taken; 422 naming the field at fault.
- `GET /api/v1/teams` → `[{id, name, members, created_at}]`, by name.
- Assigning a team: `POST /api/v1/interventions/{number}/assignments` `{"team": name,
  "note"?}` (admin.api.assignments).
"""

from __future__ import annotations

from typing import Annotated

import structlog
from pydantic import Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import ApiServices, authenticate, parse_body, read_body
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, _Body
from nexusmail.mail.addresses import check_address
from nexusmail.tickets.teams import MAX_TEAM_MEMBERS, MAX_TEAM_NAME_CHARS, create_team, list_teams

log = structlog.get_logger(__name__)


class TeamIn(_Body):
    name: str = Field(min_length=1, max_length=MAX_TEAM_NAME_CHARS)
    members: list[Annotated[str, Field(max_length=MAX_ADDRESS_CHARS)]] = Field(
        min_length=1, max_length=MAX_TEAM_MEMBERS)

    @field_validator("members")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return [check_address(address) for address in value]


def team_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [Route("/teams", h.list, methods=["GET"]),
            Route("/teams", h.create, methods=["POST"])]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def list(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            return JSONResponse(await list_teams(conn))

    async def create(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        body = parse_body(self.s, TeamIn, await read_body(request))
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: create_team(tx, body.name, body.members, now=now))
        log.info("api.team_created", team=body.name, token_name=token.name)
        async with self.s.store.read() as conn:
            [team] = await list_teams(conn, body.name)
        return JSONResponse(team, status_code=201)
