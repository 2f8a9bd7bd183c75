"""The JSON API: a thin Starlette layer over tickets' use cases.

Mounting: `api_routes(services)` returns one `Mount("/api/v1", ...)` holding its own
small Starlette app, so its JSON error handling travels with it into whatever app the
daemon (and later the admin pages) build; `build_api(services)` is that app alone.

Every route except `GET /api/v1/health`, `GET /api/v1/ready` and `GET /metrics`
(see admin.api_health) needs `Authorization: Bearer <token>` (see
admin.tokens; `nexusmail token create` makes one).

Shapes:
- errors: `{"error": "<message>"}` with 400 (not JSON), 401, 404, 405, 409, 413,
  422 (names each field at fault), 503 (storage unavailable: retry) or 500.
- `GET /api/v1/interventions?status=open|on_hold|resolved|closed&q=text&due=overdue|today
  &customer=ID&equipment=ID&sort=activity|number|priority|due&limit=1..200&offset=0` →
  `{"items": [summary...],
  "total": N, "limit": L, "offset": O}`, by last activity unless `sort` says otherwise
  (tickets.queries.LIST_ORDERS); each summary has `last_activity_at`; a
  summary is the detail below without `description`, `assignments` and `messages`.
  Each carries `needs_attention`: a list of tickets.attention.Attention flags
  (`rejected`, `unclear`, `unverified`, `unassigned`, `mail_after_close`, `resolved`,
  `not_done`, `hours_unread`), and
  `response_due`, `resolution_due` (ISO 8601 with offset, or null). `due` keeps the
  open ones with a deadline passed (`overdue`) or falling today (tickets.due_filter).
- `GET /api/v1/interventions/{number}`, and the 201 of `POST /api/v1/interventions`
  and the 200 of `POST .../{number}/close` (body optional: `{"note": "..."}`) and of
  `POST .../{number}/reopen` (409 when it is open): see
  tickets.queries.InterventionDetail, with the archive's records of
  records.links.InterventionRecords (`customer{...}`, `contact`, `site`, `equipment`,
  `channel`, `requested_at`, `owner`, `status_reason`).
- The archive (customers, contacts, sites, equipment, request types): see
  admin.api.records. `POST /api/v1/interventions` takes an optional
  `assignees: [email, ...]`, assigned in the same transaction (422 naming the employee
  when one is unknown or inactive; nothing is created then).
- Assignments and notes: see admin.api_assignments; answering the customer:
  admin.api.replies; activities and timesheets: admin.api.activities; contracts:
  admin.api.contracts.
- Operators and API tokens (admin only): admin.api.operators, admin.api.api_tokens.
- `GET /api/v1/employees` → `{"items": [employee...]}` (each with `language` and
  `active`); `POST` → 201 the employee.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from nexusmail.admin.api.activities import activity_routes
from nexusmail.admin.api.api_tokens import token_routes
from nexusmail.admin.api.assignments import assignment_routes, signing_keys
from nexusmail.admin.api.base import (
    MAX_BODY_BYTES,
    MAX_ID,
    ApiError,
    ApiServices,
    authenticate,
    int_param,
    parse_body,
    path_id,
    read_body,
)
from nexusmail.admin.api.contracts import contract_routes
from nexusmail.admin.api.employees import employee_routes
from nexusmail.admin.api.health import metrics_routes, ready_routes
from nexusmail.admin.api.intervention_edits import archive_links, edit_routes
from nexusmail.admin.api.models import CloseIn, EmployeeIn, InterventionIn
from nexusmail.admin.api.operators import operator_routes
from nexusmail.admin.api.records import record_routes
from nexusmail.admin.api.replies import reply_routes
from nexusmail.admin.api.schedules import schedule_routes
from nexusmail.admin.api.sequences import sequence_routes
from nexusmail.admin.api.teams import team_routes
from nexusmail.admin.blob_reads import BlobReadFailed, raw_mail_bytes, read_attachment
from nexusmail.admin.downloads import download_headers, safe_media_type
from nexusmail.blobs.store import BlobUnavailable
from nexusmail.records.fields import InvalidRecord
from nexusmail.records.links import intervention_records
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import queries, visibility
from nexusmail.tickets.case_edits import EditRefused
from nexusmail.tickets.cases import (
    Conflict,
    NotFound,
    add_employee,
    close_intervention,
    reopen_intervention,
)
from nexusmail.tickets.customer_closing import set_notify_on_resolve
from nexusmail.tickets.due_filter import Due, due_filter
from nexusmail.tickets.entry import EntryRefused, open_with_assignees
from nexusmail.tickets.models import Source, Status
from nexusmail.tickets.new_requests import OpenRequest
from nexusmail.tickets.store import StorageError

# Re-exported: the daemon and the tests build the API from this module.
__all__ = ["MAX_BODY_BYTES", "ApiError", "ApiServices", "api_routes", "build_api"]

log = structlog.get_logger(__name__)

MAX_PAGE = 200
MAX_QUERY_CHARS = 200
def api_routes(services: ApiServices) -> list[BaseRoute]:
    """The routes to include in the daemon's web app: everything under /api/v1, and
    /metrics at the root."""
    return [Mount("/api/v1", app=_api_app(services), name="api"), *metrics_routes(services)]


def build_api(services: ApiServices) -> Starlette:
    """A web app serving only the API."""
    return Starlette(routes=api_routes(services))


def _api_app(services: ApiServices) -> Starlette:
    h = _Handlers(services)
    routes = [
        Route("/health", h.health, methods=["GET"]),
        *ready_routes(services),
        Route("/employees", h.list_employees, methods=["GET"]),
        Route("/employees", h.create_employee, methods=["POST"]),
        Route("/interventions", h.list_interventions, methods=["GET"]),
        Route("/interventions", h.create_intervention, methods=["POST"]),
        Route("/interventions/{number:int}", h.get_intervention, methods=["GET"]),
        Route("/interventions/{number:int}/close", h.close_intervention, methods=["POST"]),
        Route("/interventions/{number:int}/reopen", h.reopen_intervention, methods=["POST"]),
        Route("/attachments/{id:int}", h.get_attachment, methods=["GET"]),
        Route("/messages/{id:int}/raw", h.get_raw_message, methods=["GET"]),
        *assignment_routes(services),
        *schedule_routes(services),
        *reply_routes(services),
        *record_routes(services),
        *activity_routes(services),
        *edit_routes(services),
        *contract_routes(services),
        *employee_routes(services),
        *team_routes(services),
        *sequence_routes(services),
        *operator_routes(services),
        *token_routes(services),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            NotFound: _status_error(404),
            Conflict: _status_error(409),
            EntryRefused: _status_error(422),
            InvalidRecord: _status_error(422),
            EditRefused: _status_error(422),
            StorageError: _storage_error,
            BlobUnavailable: _storage_error,  # the attachment store, out of reach
            Exception: _internal_error,
        },
    )


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", **self.s.health_details()})

    async def list_employees(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            items = await queries.list_employees(conn)
        return JSONResponse({"items": items})

    async def create_employee(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        body = parse_body(self.s, EmployeeIn, await read_body(request))
        now = self.s.clock.now()
        employee_id = await self.s.store.write(
            lambda tx: add_employee(
                tx, email=body.email, name=body.name, language=body.language, now=now
            )
        )
        log.info("api.employee_created", employee_id=employee_id, email=body.email,
                 token_name=token.name)
        async with self.s.store.read() as conn:
            employee = await queries.get_employee(conn, employee_id)
        return JSONResponse(employee, status_code=201)

    async def list_interventions(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        params = request.query_params
        status = params.get("status") or None
        if status is not None and status not in {s.value for s in Status}:
            raise ApiError(422, "status: should be one of " + ", ".join(Status))
        q = params.get("q") or None
        if q is not None and len(q) > MAX_QUERY_CHARS:
            raise ApiError(422, f"q: is longer than {MAX_QUERY_CHARS} characters")
        sort = params.get("sort") or "activity"
        if sort not in queries.LIST_ORDERS:
            raise ApiError(422, "sort: should be one of " + ", ".join(queries.LIST_ORDERS))
        limit = int_param(params.get("limit"), "limit", default=50, low=1, high=MAX_PAGE)
        offset = int_param(params.get("offset"), "offset", default=0, low=0, high=MAX_ID)
        due = params.get("due") or None
        if due is not None and due not in {d.value for d in Due}:
            raise ApiError(422, "due: should be one of " + ", ".join(Due))
        window = (due_filter(Due(due), self.s.clock.now(), self.s.settings.calendar.timezone)
                  if due else None)
        # A customer's or a machine's cases, by id (0: not asked for).
        customer = int_param(params.get("customer"), "customer", default=0, low=1,
                             high=MAX_ID) or None
        equipment = int_param(params.get("equipment"), "equipment", default=0, low=1,
                              high=MAX_ID) or None
        async with self.s.store.read() as conn:
            page = await queries.list_interventions(
                conn, status=status, q=q, limit=limit, offset=offset, due=window,
                sort=sort, owner=token.operator.owner_limit if token.operator else None,
                customer_id=customer, equipment_id=equipment)
        return JSONResponse(page)

    async def get_intervention(self, request: Request) -> Response:
        await authenticate(self.s, request)
        number = path_id(request, "number")
        return JSONResponse(await self._intervention(number))

    async def create_intervention(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        body = parse_body(self.s, InterventionIn, await read_body(request))
        entry = OpenRequest(
            customer_email=body.customer_email, customer_name=body.customer_name,
            subject=body.subject, description=body.description, source=Source.API,
            request_type=body.request_type, priority=body.priority,
            desired_from=body.desired_from, desired_to=body.desired_to,
            author=token.author, **archive_links(body),
        )
        now, settings = self.s.clock.now(), self.s.settings
        keys = signing_keys(self.s) if body.assignees else tuple(self.s.reply_keys)
        limit = token.operator.owner_limit if token.operator else None

        def unit(tx: WriteTx) -> int:
            opened: int = set_notify_on_resolve(tx, open_with_assignees(
                tx, entry, body.assignees, now=now, settings=settings, reply_keys=keys,
                assigned_by=token.author), body.notify_customer_on_resolve)
            if limit is not None:  # only a customer of theirs, or a new one made theirs
                visibility.claim_new_case(tx, opened, limit, now=now)
            return opened

        number = await self.s.store.write(unit)
        self.s.on_outbox()
        log.info("api.intervention_created", intervention=number, source=Source.API,
                 customer=body.customer_email, assignees=body.assignees,
                 token_name=token.name)
        return JSONResponse(
            await self._intervention(number), status_code=201,
            headers={"Location": f"/api/v1/interventions/{number}"},
        )

    async def close_intervention(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        raw = await read_body(request)
        body = parse_body(self.s, CloseIn, raw) if raw.strip() else CloseIn()
        now = self.s.clock.now()
        await self.s.store.write(
            lambda tx: close_intervention(
                tx, number, now=now, author=token.author, note=body.note,
                reason=body.reason,
            )
        )
        log.info("api.intervention_closed", intervention=number, token_name=token.name)
        return JSONResponse(await self._intervention(number))

    async def reopen_intervention(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        now = self.s.clock.now()
        await self.s.store.write(
            lambda tx: reopen_intervention(tx, number, now=now, author=token.author))
        log.info("api.intervention_reopened", intervention=number, token_name=token.name)
        return JSONResponse(await self._intervention(number))

    async def get_attachment(self, request: Request) -> Response:
        await authenticate(self.s, request)
        attachment_id = path_id(request, "id")
        async with self.s.store.read() as conn:
            attachment = await queries.get_attachment(conn, attachment_id)
        if attachment is None:
            raise ApiError(404, f"attachment {attachment_id} does not exist")
        try:
            data = await read_attachment(self.s.blobs, attachment_id, attachment["sha256"],
                                         event_prefix="api")
        except BlobReadFailed as exc:
            raise ApiError(exc.status, exc.describe(attachment_id)) from None
        return Response(
            data,
            media_type=safe_media_type(attachment["content_type"]),
            headers=download_headers(attachment["filename"]),
        )

    async def get_raw_message(self, request: Request) -> Response:
        await authenticate(self.s, request)
        message_id = path_id(request, "id")
        async with self.s.store.read() as conn:
            sha = await queries.get_message_raw_sha(conn, message_id)
            raw = await queries.get_raw_message(conn, sha) if sha else None
        if raw is None:
            raise ApiError(404, f"message {message_id} has no original mail")
        try:
            data = await raw_mail_bytes(self.s.blobs, raw, message_id, event_prefix="api")
        except BlobReadFailed as exc:
            raise ApiError(exc.status, f"the original mail of message {message_id}: "
                           f"{exc.reason}") from None
        return Response(
            data, media_type="message/rfc822",
            headers=download_headers(f"message-{message_id}.eml"),
        )

    async def _intervention(self, number: int) -> dict[str, Any]:
        async with self.s.store.read() as conn:
            detail = await queries.get_intervention(conn, number)
            records = await intervention_records(conn, number)
        if detail is None or records is None:
            raise ApiError(404, f"intervention {number} does not exist")
        # The archive's view of the customer (and contact, site, machine) replaces the
        # thread's short one.
        return {**detail, **records}

def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: "no such API route", 405: f"method {request.method} is not allowed here"}
    message = messages.get(exc.status_code, str(exc.detail))
    return _error(exc.status_code, message, dict(exc.headers or {}))


def _status_error(status: int) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> Response:
        return _error(status, str(exc))

    return handler


async def _storage_error(request: Request, exc: Exception) -> Response:
    log.error("api.storage_failed", path=request.url.path, error=str(exc))
    return _error(503, "storage is unavailable; retry later", {"Retry-After": "5"})


async def _internal_error(request: Request, exc: Exception) -> Response:
    # Reached only for a bug: the client gets JSON, the log the traceback.
    log.exception("api.internal_error", path=request.url.path)
    return _error(500, "internal error")
