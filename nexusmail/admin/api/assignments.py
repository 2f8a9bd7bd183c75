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
- `assignees` of `POST /api/v1/interventions`: `open_with_assignees` below.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

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
from nexusmail.config import Settings
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import queries
from nexusmail.tickets.assignments import apply_reply_as_operator, assign
from nexusmail.tickets.cases import (
    Conflict,
    NewMessage,
    NotFound,
    StoredAttachment,
    add_message,
    intervention_status,
)
from nexusmail.tickets.models import Direction, MessageKind
from nexusmail.tickets.new_requests import OpenRequest, open_request

log = structlog.get_logger(__name__)

# Text fields and multipart framing travel beside the files; the files themselves are
# held to [limits] max_message_bytes, like an inbound mail.
FORM_OVERHEAD_BYTES = 1024 * 1024
MAX_REGISTER_REF_CHARS = 100
MAX_FILENAME_CHARS = 255
_FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


def assignment_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/interventions/{number:int}/assignments", h.add_assignment, methods=["POST"]),
        Route("/interventions/{number:int}/notes", h.add_note, methods=["POST"]),
        Route("/messages/{id:int}/apply", h.apply_reply, methods=["POST"]),
    ]


def open_with_assignees(
    tx: WriteTx,
    entry: OpenRequest,
    assignees: Sequence[str],
    *,
    now: datetime,
    settings: Settings,
    reply_keys: Sequence[bytes],
    assigned_by: str,
) -> int:
    """Open the intervention and assign everyone listed, all in one transaction: an
    unknown or inactive employee refuses the whole request (422), nothing is created."""
    number = open_request(tx, entry, now=now, settings=settings)
    for email in assignees:
        try:
            assign(tx, number, email, now=now, settings=settings, reply_keys=reply_keys,
                   assigned_by=assigned_by)
        except (NotFound, Conflict) as exc:
            raise ApiError(422, f"assignees: {exc}") from None
    return number


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
        stored = []
        for name, ctype, data in files:
            # Blob first, row after: a crash between them leaves an unused file, never a
            # row without its bytes (tickets.blobs).
            digest = await asyncio.to_thread(self.s.blobs.put, data)
            stored.append(StoredAttachment(name, ctype, len(data), digest))
        note = NewMessage(
            kind=MessageKind.NOTE, direction=Direction.INTERNAL, author=f"api:{token.name}",
            body_text=text, attachments=stored,
            extra={"register_ref": register_ref} if register_ref else {},
        )
        now = self.s.clock.now()

        def add(tx: WriteTx) -> int:
            intervention_status(tx, number)  # NotFound if it vanished meanwhile
            return add_message(tx, number, note, now=now)

        message_id = await self.s.store.write(add)
        log.info("api.note_added", intervention=number, message_id=message_id,
                 files=len(stored), token_name=token.name)
        async with self.s.store.read() as conn:
            message = await queries.get_message(conn, message_id)
        return JSONResponse(message, status_code=201)

    async def _read_note_form(
        self, request: Request
    ) -> tuple[str, str, list[tuple[str, str, bytes]]]:
        limits = self.s.settings.limits
        limited = _limit_body(request, limits.max_message_bytes + FORM_OVERHEAD_BYTES)
        files: list[tuple[str, str, bytes]] = []
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
                files.append((_clean_filename(upload.filename or ""),
                              (upload.content_type or "").strip()[:255]
                              or "application/octet-stream", data))
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


def _clean_filename(name: str) -> str:
    # Some clients send the whole client-side path ("C:\\Users\\...\\foto.jpg").
    base = name.replace("\\", "/").rpartition("/")[2]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:MAX_FILENAME_CHARS] or "attachment"
