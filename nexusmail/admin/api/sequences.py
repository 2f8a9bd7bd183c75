"""Action-sequence routes of the JSON API.

- `POST /api/v1/sequences` `{code, description, notes, trigger_request_type?, steps:
  [{employee_email | team, action, expected_hours, notes, postpone_days}]}` → 201 the
  sequence with its steps numbered from 1; 404 an unknown employee, team or request
  type; 409 the code is taken; 422 naming the field at fault (a step names exactly one
  of `employee_email` and `team`).
- `GET /api/v1/sequences` → every sequence with its steps, by code.
"""

from __future__ import annotations

import structlog
from pydantic import Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import ApiServices, authenticate, parse_body, read_body
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, _Body
from nexusmail.mail.addresses import check_address
from nexusmail.tickets import sequences
from nexusmail.tickets.sequences import SequenceDef, StepDef, create_sequence, list_sequences

log = structlog.get_logger(__name__)

MAX_POSTPONE_DAYS = 366
MAX_HOURS = 1000.0


class StepIn(_Body):
    employee_email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    team: str | None = Field(None, min_length=1, max_length=100)
    action: str = Field(min_length=1, max_length=200)
    expected_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    notes: str = Field("", max_length=sequences.MAX_TEXT_CHARS)
    postpone_days: int = Field(0, ge=0, le=MAX_POSTPONE_DAYS)

    @field_validator("employee_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @model_validator(mode="after")
    def _one_assignee(self) -> StepIn:
        if (self.employee_email is None) == (self.team is None):
            raise ValueError("a step names exactly one of employee_email and team")
        return self


class SequenceIn(_Body):
    code: str = Field(min_length=1, max_length=sequences.MAX_CODE_CHARS)
    description: str = Field("", max_length=sequences.MAX_TEXT_CHARS)
    notes: str = Field("", max_length=sequences.MAX_TEXT_CHARS)
    trigger_request_type: str | None = Field(None, min_length=1, max_length=100)
    steps: list[StepIn] = Field(min_length=1, max_length=sequences.MAX_STEPS)


def sequence_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [Route("/sequences", h.list, methods=["GET"]),
            Route("/sequences", h.create, methods=["POST"])]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def list(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            return JSONResponse(await list_sequences(conn))

    async def create(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        body = parse_body(self.s, SequenceIn, await read_body(request))
        plan = SequenceDef(
            code=body.code, description=body.description, notes=body.notes,
            trigger_request_type=body.trigger_request_type,
            steps=[StepDef(action=s.action, employee_email=s.employee_email, team=s.team,
                           expected_hours=s.expected_hours, notes=s.notes,
                           postpone_days=s.postpone_days) for s in body.steps])
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: create_sequence(tx, plan, now=now))
        log.info("api.sequence_created", code=body.code, token_name=token.name)
        async with self.s.store.read() as conn:
            [created] = await list_sequences(conn, body.code)
        return JSONResponse(created, status_code=201)
