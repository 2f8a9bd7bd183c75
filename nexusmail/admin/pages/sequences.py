"""Action sequences on the admin page: the list with each plan's steps, a new one, editing
one (`/sequences`, `/sequences/{id}`), starting one from a thread page
(`POST /interventions/{number}/sequence`, step 1 mailed at once), and mailing its
blocked or rejected current step again (`.../sequence/again`).

The step rows of the form are read in order; a row without an action is left out, so
the blank rows under a plan add steps and emptying a row's action removes it. The same
rules as the JSON API check what is typed (admin.api.sequences).
"""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.assignments import signing_keys
from nexusmail.admin.api.base import MAX_ID, ApiError
from nexusmail.admin.api.sequences import SequenceIn, needs_report
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.admin.pages.form_errors import errors_of, problem_of, validation_message
from nexusmail.i18n import Msg, message_of, msg
from nexusmail.records.request_types import list_request_types
from nexusmail.tickets import queries, sequences
from nexusmail.tickets.sequence_steps import mail_again, start_and_mail
from nexusmail.tickets.sequences import (
    SequenceDef,
    SequenceView,
    StepDef,
    create_sequence,
    list_sequences,
    update_sequence,
)
from nexusmail.tickets.teams import list_teams

log = structlog.get_logger(__name__)

# Blank step rows under a plan: room for new steps without any script.
BLANK_ROWS = 3
# Fields per step row, and the sequence's own (csrf, code, description, notes, trigger).
_STEP_FIELDS = ("assignee", "action", "hours", "notes", "postpone", "report")
_MAX_FIELDS = 10 + len(_STEP_FIELDS) * (sequences.MAX_STEPS + BLANK_ROWS)
# The "needs a report" choice: automatic (a visit does), or as the operator says.
_REPORT_CHOICES = {"": None, "yes": True, "no": False}


def sequence_page_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/sequences", h.index, methods=["GET"]),
        Route("/sequences", h.add, methods=["POST"]),
        Route("/sequences/{id:int}", h.card, methods=["GET"]),
        Route("/sequences/{id:int}", h.save, methods=["POST"]),
        Route("/interventions/{number:int}/sequence", h.start, methods=["POST"]),
        Route("/interventions/{number:int}/sequence/again", h.again, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def index(self, request: Request) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            plans = await list_sequences(conn)
            choices = await _choices(conn)
        return self.p.render(request, "sequences.html.j2", plans=plans,
                             blank_rows=BLANK_ROWS, **choices)

    async def card(self, request: Request) -> Response:
        await self.p.operator(request)
        plan = await self._plan(request)
        async with self.p.services.store.read() as conn:
            choices = await _choices(conn)
        return self.p.render(request, "sequence.html.j2", plan=plan, blank_rows=BLANK_ROWS,
                             **choices)

    async def add(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        plan = _plan_of(await _form(request))
        now = self.p.services.clock.now()
        sequence_id = await self.p.services.store.write(
            lambda tx: create_sequence(tx, plan, now=now))
        log.info("admin.sequence_created", code=plan.code, operator=operator.email)
        return redirect(f"/sequences/{sequence_id}",
                        msg("Sequence {code} saved.", code=plan.code), request)

    async def save(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        current = await self._plan(request)
        form = await _form(request)
        plan = _plan_of(form, code=current["code"])
        await self.p.services.store.write(lambda tx: update_sequence(tx, plan))
        log.info("admin.sequence_updated", code=plan.code, operator=operator.email)
        return redirect(f"/sequences/{current['id']}",
                        msg("Sequence {code} saved.", code=plan.code), request)

    async def start(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = _number(request, "number")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            code = form_text(form, "code", sequences.MAX_CODE_CHARS)
        if not code:
            raise PageError(422, msg("Choose a sequence to start."))
        try:
            keys = signing_keys(self.p.services)
        except ApiError as exc:
            raise PageError(exc.status, message_of(exc)) from None
        now, settings = self.p.services.clock.now(), self.p.services.settings
        await self.p.services.store.write(lambda tx: start_and_mail(
            tx, number, code, started_by=f"operator:{operator.email}", now=now,
            settings=settings, reply_keys=keys))
        self.p.services.on_outbox()
        log.info("admin.sequence_started", intervention=number, code=code,
                 operator=operator.email)
        return redirect(f"/interventions/{number}", msg(
            "Sequence {code} started; step 1 is on its way.", code=code), request)

    async def again(self, request: Request) -> Response:
        """The blocked or rejected current step is mailed again now."""
        operator = await self.p.operator(request)
        number = _number(request, "number")
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
        try:
            keys = signing_keys(self.p.services)
        except ApiError as exc:
            raise PageError(exc.status, message_of(exc)) from None
        now, settings = self.p.services.clock.now(), self.p.services.settings
        await self.p.services.store.write(lambda tx: mail_again(
            tx, number, by=f"operator:{operator.email}", now=now, settings=settings,
            reply_keys=keys))
        self.p.services.on_outbox()
        log.info("admin.sequence_step_again", intervention=number, operator=operator.email)
        return redirect(f"/interventions/{number}",
                        msg("The step is mailed again."), request)

    async def _plan(self, request: Request) -> SequenceView:
        sequence_id = _number(request, "id")
        async with self.p.services.store.read() as conn:
            found = [p for p in await list_sequences(conn) if p["id"] == sequence_id]
        if not found:
            raise PageError(404, msg("Sequence {id} does not exist.", id=sequence_id))
        return found[0]


async def _choices(conn: Any) -> dict[str, Any]:
    """Who a step can go to, and the request types that can start a sequence."""
    employees = [e for e in await queries.list_employees(conn) if e["active"]]
    return {"employees": employees, "teams": await list_teams(conn),
            "request_types": await list_request_types(conn)}


def _plan_of(form: FormData, code: str | None = None) -> SequenceDef:
    """The sequence the form describes, checked as the API checks it; 422 naming the
    field at fault."""
    steps: list[dict[str, Any]] = []
    reports: list[bool | None] = []
    for row in range(1, sequences.MAX_STEPS + BLANK_ROWS + 1):
        action = form_text(form, f"action_{row}", 200)
        if not action:
            continue
        assignee = form_text(form, f"assignee_{row}", 300)
        kind, _, who = assignee.partition(":")
        steps.append({
            "action": action, "notes": form_text(form, f"notes_{row}", 2000),
            "employee_email": who if kind == "employee" else None,
            "team": who if kind == "team" else None,
            "expected_hours": form_text(form, f"hours_{row}", 20).replace(",", ".") or None,
            "postpone_days": form_text(form, f"postpone_{row}", 10) or 0})
        reports.append(_REPORT_CHOICES.get(form_text(form, f"report_{row}", 5)))
    try:
        body = SequenceIn.model_validate({
            "code": code if code is not None else form_text(form, "code", 200),
            "description": form_text(form, "description", 2000),
            "notes": form_text(form, "notes", 2000),
            "trigger_request_type": form_text(form, "trigger_request_type", 100) or None,
            "steps": steps})
    except ValidationError as exc:
        raise PageError(422, _problem(exc)) from None
    return SequenceDef(
        code=body.code, description=body.description, notes=body.notes,
        trigger_request_type=body.trigger_request_type,
        steps=[StepDef(action=s.action, employee_email=s.employee_email, team=s.team,
                       expected_hours=s.expected_hours, notes=s.notes,
                       postpone_days=s.postpone_days,
                       needs_report=needs_report(s.action, given))
               for s, given in zip(body.steps, reports, strict=True)])


def _problem(exc: ValidationError) -> Msg:
    """The first thing wrong, in words an operator can act on: a step's problem names
    the step by its number and the field within it."""
    error = errors_of(exc)[0]
    where = error["loc"]
    if where[:1] == ("steps",) and len(where) > 1 and isinstance(where[1], int):
        return msg("Step {number}: {problem}", number=where[1] + 1,
                   problem=problem_of(error, where[2:]))
    if where == ("steps",):
        return msg("A sequence needs at least one step with an action.")
    return validation_message(exc)


def _number(request: Request, name: str) -> int:
    value = int(request.path_params[name])
    if not 0 < value <= MAX_ID:
        raise PageError(404, msg("Intervention #{number} does not exist.", number=value)
                        if name == "number" else msg("Sequence {id} does not exist.", id=value))
    return value


async def _form(request: Request) -> FormData:
    async with request.form(max_files=0, max_fields=_MAX_FIELDS) as form:
        check_csrf(request, form)
        return form
