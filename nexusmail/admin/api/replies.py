"""Answering the customer from the JSON API.

- `POST /api/v1/interventions/{number}/replies`, JSON `{"text": ..., "close": false}`
  or `multipart/form-data` with `text`, `file` (zero or more) and `close`
  (`true`/`on`/`1`) → 201 the reply as a thread message of kind `operator_reply`
  (see tickets.queries.MessageView), mailed to the customer and the contact through
  the outbox (tickets.operator_replies); with `close` the case is closed after it, in
  the same transaction. 404 unknown intervention; 409 nobody to write to, or `close`
  on a closed case; 413 files above `[limits] max_message_bytes`; 422 no text.
"""

from __future__ import annotations

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
from nexusmail.admin.api.models import ReplyIn
from nexusmail.admin.api.uploads import is_form, read_upload_form
from nexusmail.tickets import queries
from nexusmail.tickets.entry import NoteFile, reply_to_customer

log = structlog.get_logger(__name__)

_TRUE = frozenset({"true", "on", "1", "yes"})
_FALSE = frozenset({"", "false", "off", "0", "no"})


def reply_routes(services: ApiServices) -> list[Route]:
    return [Route("/interventions/{number:int}/replies", _Replies(services).add,
                  methods=["POST"])]


class _Replies:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def add(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        # Checked before reading any upload, so no file is stored for a missing case.
        async with self.s.store.read() as conn:
            if await queries.get_intervention_status(conn, number) is None:
                raise ApiError(404, f"intervention {number} does not exist")
        text, close, files = await self._read(request)
        limits = self.s.settings.limits
        if len(text) > limits.max_body_chars:
            raise ApiError(422, f"text: is longer than {limits.max_body_chars} characters "
                                "([limits] max_body_chars)")
        message_id = await reply_to_customer(
            self.s.store, self.s.blobs, number, author=token.author, author_name="",
            text=text, files=files, close=close, now=self.s.clock.now(),
            settings=self.s.settings)
        self.s.on_outbox()
        log.info("api.customer_replied", intervention=number, message_id=message_id,
                 files=len(files), closed=close, token_name=token.name)
        async with self.s.store.read() as conn:
            message = await queries.get_message(conn, message_id)
        return JSONResponse(message, status_code=201)

    async def _read(self, request: Request) -> tuple[str, bool, list[NoteFile]]:
        if not is_form(request):
            body = parse_body(self.s, ReplyIn, await read_body(request))
            return body.text, body.close, []
        form = await read_upload_form(request, self.s.settings.limits, ("text", "close"))
        close = form.fields["close"].lower()
        if close not in _TRUE | _FALSE:
            raise ApiError(422, "close: should be true or false")
        if not form.fields["text"]:
            raise ApiError(422, "text: a reply to the customer needs text")
        return form.fields["text"], close in _TRUE, form.files
