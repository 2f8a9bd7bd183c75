"""Assignment and note routes of the JSON API.

- `POST /api/v1/interventions/{number}/assignments` `{"employee_email": ..., "note":
  "instructions for the technician, in the mail"}` → 201 the
  assignment `{id, employee_email, employee_name, status, decided_at, reason}`, its
  mail queued in the outbox; 404 unknown intervention or employee; 409 already
  assigned, employee inactive, or intervention closed. With `{"team": name, "note"?}`
  instead, every active member of the team is assigned (the first to confirm takes the
  job, see tickets.teams) → 201 `{team, assignments: [...]}`; 404 unknown team; 409 no
  active member, a member already assigned, or intervention closed.
- `POST /api/v1/interventions/{number}/notes`, `multipart/form-data` with `text`,
  `file` (zero or more) and `register_ref` (a correspondence-register entry) → 201 the
  note as a thread message (see tickets.queries.MessageView); 413 files above
  `[limits] max_message_bytes`; 415 another body type; 422 neither text nor file.
- `POST /api/v1/messages/{id}/apply` → 200 the intervention as it is now: a
  technician's reply that was kept without acting (no proof it answers the assignment
  mail, a From in doubt, a replay) applied by hand; 404 not such a reply; 409 applied
  already, neither yes nor no, or intervention closed.
- `assignees` of `POST /api/v1/interventions`: tickets.entry.open_with_assignees.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import structlog
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
from nexusmail.admin.api.models import AssignmentIn, TeamAssignmentIn
from nexusmail.admin.api.uploads import is_form, read_upload_form
from nexusmail.admin.tokens import TokenInfo
from nexusmail.i18n import msg
from nexusmail.tickets import queries
from nexusmail.tickets.assignments import apply_reply_as_operator, assign, assign_team
from nexusmail.tickets.entry import NoteFile, add_note

log = structlog.get_logger(__name__)

MAX_REGISTER_REF_CHARS = 100


def assignment_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/interventions/{number:int}/assignments", h.add_assignment, methods=["POST"]),
        Route("/interventions/{number:int}/notes", h.add_note, methods=["POST"]),
        Route("/messages/{id:int}/apply", h.apply_reply, methods=["POST"]),
    ]


def _names_team(raw: bytes) -> bool:
    """Whether the body is a team assignment (a JSON object with a `team` key); any other
    body goes to the employee form, whose errors then say what is wrong."""
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and "team" in data


def signing_keys(services: ApiServices) -> Sequence[bytes]:
    """The reply signing keys, or a 503: without them no assignment mail can be sent."""
    if not services.reply_keys:
        log.error("api.no_reply_keys")
        raise ApiError(503, msg(
            "assignments are unavailable: no reply signing key is loaded"))
    return services.reply_keys


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def add_assignment(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        raw = await read_body(request)
        if _names_team(raw):
            return await self._assign_team(number, token, raw)
        body = parse_body(self.s, AssignmentIn, raw)
        now, settings, keys = self.s.clock.now(), self.s.settings, signing_keys(self.s)
        assignment_id = await self.s.store.write(lambda tx: assign(
            tx, number, body.employee_email, now=now, settings=settings, reply_keys=keys,
            assigned_by=token.author, note=body.note,
        ))
        self.s.on_outbox()
        log.info("api.assignment_created", intervention=number, assignment_id=assignment_id,
                 employee=body.employee_email, token_name=token.name)
        async with self.s.store.read() as conn:
            assignment = await queries.get_assignment(conn, assignment_id)
        return JSONResponse(assignment, status_code=201)

    async def _assign_team(self, number: int, token: TokenInfo, raw: bytes) -> Response:
        body = parse_body(self.s, TeamAssignmentIn, raw)
        now, settings, keys = self.s.clock.now(), self.s.settings, signing_keys(self.s)
        ids = await self.s.store.write(lambda tx: assign_team(
            tx, number, body.team, now=now, settings=settings, reply_keys=keys,
            assigned_by=token.author, note=body.note,
        ))
        self.s.on_outbox()
        log.info("api.team_assigned", intervention=number, team=body.team,
                 assignments=ids, token_name=token.name)
        async with self.s.store.read() as conn:
            assignments = [await queries.get_assignment(conn, i) for i in ids]
        return JSONResponse({"team": body.team, "assignments": assignments}, status_code=201)

    async def apply_reply(self, request: Request) -> Response:
        """A technician's reply kept without acting, applied by hand; answers the
        intervention as it is now."""
        token = await authenticate(self.s, request)
        message_id = path_id(request, "id")
        now, settings = self.s.clock.now(), self.s.settings
        number = await self.s.store.write(lambda tx: apply_reply_as_operator(
            tx, message_id, operator=token.author, now=now, settings=settings))
        self.s.on_outbox()
        async with self.s.store.read() as conn:
            detail = await queries.get_intervention(conn, number)
        return JSONResponse(detail)

    async def add_note(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        if not is_form(request):
            raise ApiError(415, "send a note as multipart/form-data (text, file, register_ref)")
        # Checked before reading the upload, so no file is stored for a missing case.
        async with self.s.store.read() as conn:
            if await queries.get_intervention_status(conn, number) is None:
                raise ApiError(404, f"intervention {number} does not exist")
        text, register_ref, files = await self._read_note_form(request)
        message_id = await add_note(
            self.s.store, self.s.blobs, number, author=token.author, text=text,
            register_ref=register_ref, files=files, now=self.s.clock.now())
        log.info("api.note_added", intervention=number, message_id=message_id,
                 files=len(files), token_name=token.name)
        async with self.s.store.read() as conn:
            message = await queries.get_message(conn, message_id)
        return JSONResponse(message, status_code=201)

    async def _read_note_form(
        self, request: Request
    ) -> tuple[str, str, list[NoteFile]]:
        limits = self.s.settings.limits
        form = await read_upload_form(request, limits, ("text", "register_ref"))
        text, register_ref = form.fields["text"], form.fields["register_ref"]
        if len(text) > limits.max_body_chars:
            raise ApiError(422, f"text: is longer than {limits.max_body_chars} characters "
                                "([limits] max_body_chars)")
        if len(register_ref) > MAX_REGISTER_REF_CHARS:
            raise ApiError(422, f"register_ref: is longer than {MAX_REGISTER_REF_CHARS}"
                                " characters")
        if not text and not form.files:
            raise ApiError(422, "text: a note needs text or a file")
        return text, register_ref, form.files
