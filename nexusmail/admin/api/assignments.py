"""Assignment and note routes of the JSON API.

- `POST /api/v1/interventions/{number}/assignments` `{"employee_email": ...}` → 201 the
  assignment `{id, employee_email, employee_name, status, decided_at, reason}`, its
  mail queued in the outbox; 404 unknown intervention or employee; 409 already
  assigned, employee inactive, or intervention closed.
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

from collections.abc import Sequence

import structlog
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from nexusmail.admin.api.base import (
    ApiError,
    ApiServices,
    authenticate,
    parse_body,
    path_id,
    read_body,
)
from nexusmail.admin.api.models import AssignmentIn
from nexusmail.tickets import queries
from nexusmail.tickets.assignments import apply_reply_as_operator, assign
from nexusmail.tickets.entry import NoteFile, add_note

log = structlog.get_logger(__name__)

# Text fields and multipart framing travel beside the files; the files themselves are
# held to [limits] max_message_bytes, like an inbound mail.
FORM_OVERHEAD_BYTES = 1024 * 1024
MAX_REGISTER_REF_CHARS = 100
_FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def assignment_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/interventions/{number:int}/assignments", h.add_assignment, methods=["POST"]),
        Route("/interventions/{number:int}/notes", h.add_note, methods=["POST"]),
        Route("/messages/{id:int}/apply", h.apply_reply, methods=["POST"]),
    ]


def signing_keys(services: ApiServices) -> Sequence[bytes]:
    """The reply signing keys, or a 503: without them no assignment mail can be sent."""
    if not services.reply_keys:
        log.error("api.no_reply_keys")
        raise ApiError(503, "assignments are unavailable: no reply signing key is loaded")
    return services.reply_keys


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def add_assignment(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        body = parse_body(self.s, AssignmentIn, await read_body(request))
        now, settings, keys = self.s.clock.now(), self.s.settings, signing_keys(self.s)
        assignment_id = await self.s.store.write(lambda tx: assign(
            tx, number, body.employee_email, now=now, settings=settings, reply_keys=keys,
            assigned_by=f"api:{token.name}",
        ))
        self.s.on_outbox()
        log.info("api.assignment_created", intervention=number, assignment_id=assignment_id,
                 employee=body.employee_email, token_name=token.name)
        async with self.s.store.read() as conn:
            assignment = await queries.get_assignment(conn, assignment_id)
        return JSONResponse(assignment, status_code=201)

    async def apply_reply(self, request: Request) -> Response:
        """A technician's reply kept without acting, applied by hand; answers the
        intervention as it is now."""
        token = await authenticate(self.s, request)
        message_id = path_id(request, "id")
        now, settings = self.s.clock.now(), self.s.settings
        number = await self.s.store.write(lambda tx: apply_reply_as_operator(
            tx, message_id, operator=f"api:{token.name}", now=now, settings=settings))
        self.s.on_outbox()
        async with self.s.store.read() as conn:
            detail = await queries.get_intervention(conn, number)
        return JSONResponse(detail)

    async def add_note(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        content_type = request.headers.get("content-type", "").partition(";")[0]
        if content_type.strip().lower() not in _FORM_TYPES:
            raise ApiError(415, "send a note as multipart/form-data (text, file, register_ref)")
        # Checked before reading the upload, so no file is stored for a missing case.
        async with self.s.store.read() as conn:
            if await queries.get_intervention_status(conn, number) is None:
                raise ApiError(404, f"intervention {number} does not exist")
        text, register_ref, files = await self._read_note_form(request)
        message_id = await add_note(
            self.s.store, self.s.blobs, number, author=f"api:{token.name}", text=text,
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
        limited = _limit_body(request, limits.max_message_bytes + FORM_OVERHEAD_BYTES)
        files: list[NoteFile] = []
        async with limited.form(max_files=limits.max_attachments, max_fields=10) as form:
            text = _text_field(form.get("text"), "text").strip()
            register_ref = _text_field(form.get("register_ref"), "register_ref").strip()
            total = 0
            for upload in form.getlist("file"):
                if not isinstance(upload, UploadFile):
                    raise ApiError(422, "file: should be a file upload, not a text field")
                if not upload.filename and not upload.size:
                    continue  # a browser's file input left empty
                data = await upload.read()
                total += len(data)
                if total > limits.max_message_bytes:
                    raise ApiError(413, f"the files are larger than {limits.max_message_bytes}"
                                        " bytes ([limits] max_message_bytes)")
                files.append(NoteFile.upload(upload.filename, upload.content_type, data))
        if len(text) > limits.max_body_chars:
            raise ApiError(422, f"text: is longer than {limits.max_body_chars} characters "
                                "([limits] max_body_chars)")
        if len(register_ref) > MAX_REGISTER_REF_CHARS:
            raise ApiError(422, f"register_ref: is longer than {MAX_REGISTER_REF_CHARS}"
                                " characters")
        if not text and not files:
            raise ApiError(422, "text: a note needs text or a file")
        return text, register_ref, files


def _limit_body(request: Request, limit: int) -> Request:
    """The same request, refused with 413 once more than `limit` body bytes arrived: a
    chunked upload has no Content-Length to refuse up front."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes")
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes")
        return message

    return Request(request.scope, receive)


def _text_field(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(422, f"{name}: should be text, not a file")
    return value
