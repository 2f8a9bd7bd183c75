"""Action-sequence routes of the JSON API.

- `POST /api/v1/sequences` `{code, description, notes, trigger_request_type?, steps:
  [{employee_email | team, action, expected_hours, notes, postpone_days, needs_report?}]}`
  → 201 the sequence with its steps numbered from 1; 404 an unknown employee, team or request
  type; 409 the code is taken; 422 naming the field at fault (a step names exactly one
  of `employee_email` and `team`). A step is finished by its assignee's "done" work
  report when `needs_report` (default: only for the action `visit`), else by their
  confirmation; `postpone_days` business days after a step is finished, the next one is
  mailed.
- `GET /api/v1/sequences` → every sequence with its steps, by code.
- `POST /api/v1/interventions/{number}/sequence` `{code}` → 201 the run as the
  intervention's `sequence` shows it (tickets.sequence_queries.SequenceRunView), step 1
  mailed at once; 404 unknown intervention or code; 409 the intervention is closed or
  has a sequence already; 503 no reply signing key.
- `POST /api/v1/interventions/{number}/sequence/again` → 200 the run, its current step
  mailed again now: one that could not be mailed (`blocked`: its employee retired, its
  team empty) or that was `rejected`; 404 no sequence running; 409 any other step.
"""

from __future__ import annotations

import structlog
from pydantic import Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.assignments import signing_keys
from nexusmail.admin.api.base import ApiServices, authenticate, parse_body, path_id, read_body
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, _Body
from nexusmail.i18n import msg
from nexusmail.mail.addresses import check_address
from nexusmail.tickets import sequences
from nexusmail.tickets.sequence_queries import sequence_of
from nexusmail.tickets.sequence_steps import mail_again, start_and_mail
from nexusmail.tickets.sequences import SequenceDef, StepDef, create_sequence, list_sequences

log = structlog.get_logger(__name__)

MAX_POSTPONE_DAYS = 366
MAX_HOURS = 1000.0
VISIT = "visit"


class StepIn(_Body):
    employee_email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    team: str | None = Field(None, min_length=1, max_length=100)
    action: str = Field(min_length=1, max_length=200)
    expected_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    notes: str = Field("", max_length=sequences.MAX_TEXT_CHARS)
    postpone_days: int = Field(0, ge=0, le=MAX_POSTPONE_DAYS)
    # Absent: a visit needs a work report, any other action is finished by confirming.
    needs_report: bool | None = None

    @field_validator("employee_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @model_validator(mode="after")
    def _one_assignee(self) -> StepIn:
        if (self.employee_email is None) == (self.team is None):
            raise ValueError(msg("a step names exactly one of employee_email and team"))
        return self


class StartIn(_Body):
    code: str = Field(min_length=1, max_length=sequences.MAX_CODE_CHARS)


class SequenceIn(_Body):
    code: str = Field(min_length=1, max_length=sequences.MAX_CODE_CHARS)
    description: str = Field("", max_length=sequences.MAX_TEXT_CHARS)
    notes: str = Field("", max_length=sequences.MAX_TEXT_CHARS)
    trigger_request_type: str | None = Field(None, min_length=1, max_length=100)
    steps: list[StepIn] = Field(min_length=1, max_length=sequences.MAX_STEPS)


def needs_report(action: str, given: bool | None) -> bool:
    """Whether a step waits for a "done" work report: as given, else only a visit (the
    job on site whose hours a report records); a call, a mail, a quote or a check is
    finished when its assignee confirms it."""
    return given if given is not None else action.strip().casefold() == VISIT


def sequence_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [Route("/sequences", h.list, methods=["GET"]),
            Route("/sequences", h.create, methods=["POST"]),
            Route("/interventions/{number:int}/sequence", h.start, methods=["POST"]),
            Route("/interventions/{number:int}/sequence/again", h.again, methods=["POST"])]


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
                           postpone_days=s.postpone_days,
                           needs_report=needs_report(s.action, s.needs_report))
                   for s in body.steps])
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: create_sequence(tx, plan, now=now))
        log.info("api.sequence_created", code=body.code, token_name=token.name)
        async with self.s.store.read() as conn:
            [created] = await list_sequences(conn, body.code)
        return JSONResponse(created, status_code=201)

    async def start(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        body = parse_body(self.s, StartIn, await read_body(request))
        keys = signing_keys(self.s)
        now, settings = self.s.clock.now(), self.s.settings
        await self.s.store.write(lambda tx: start_and_mail(
            tx, number, body.code, started_by=token.author, now=now, settings=settings,
            reply_keys=keys))
        self.s.on_outbox()
        log.info("api.sequence_started", intervention=number, code=body.code,
                 token_name=token.name)
        async with self.s.store.read() as conn:
            run = await sequence_of(conn, number)
        return JSONResponse(run, status_code=201)

    async def again(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        keys = signing_keys(self.s)
        now, settings = self.s.clock.now(), self.s.settings
        await self.s.store.write(lambda tx: mail_again(
            tx, number, by=token.author, now=now, settings=settings, reply_keys=keys))
        self.s.on_outbox()
        log.info("api.sequence_step_again", intervention=number, token_name=token.name)
        async with self.s.store.read() as conn:
            run = await sequence_of(conn, number)
        return JSONResponse(run)
