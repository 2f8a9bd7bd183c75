"""Changing interventions after creation, in the JSON API.

- `PATCH /api/v1/interventions/{number}` with any of `request_type`, `priority`,
  `desired_from`, `desired_to`, `subject`, `contact_email`, `site_id`,
  `equipment_serial` (null clears a link), `channel`, `requested_at`,
  `notify_customer_on_resolve` (true, false, or null: as configured) → 200 the
  intervention; each change is written on its thread with the token's name. A contact,
  site or machine must be the case customer's (422 otherwise); a machine brings its site.
- `POST /api/v1/interventions/{number}/hold` `{"reason": ...}` → 200, status `on_hold`,
  the reason on the thread and in `status_reason`; 409 unless open.
  `POST .../reopen` resumes it.
- Employees: see admin.api.employees.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import structlog
from pydantic import Field, field_validator
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
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, Channel, InterventionIn, _Body, moment
from nexusmail.mail.addresses import check_address
from nexusmail.records.links import intervention_records
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import queries
from nexusmail.tickets.case_edits import edit_intervention, hold_intervention, resolve_links
from nexusmail.tickets.cases import NotFound
from nexusmail.tickets.models import Priority

log = structlog.get_logger(__name__)

_LINKS = ("contact_email", "site_id", "equipment_serial")


class HoldIn(_Body):
    reason: str = Field(min_length=1, max_length=1000)


class InterventionPatchIn(_Body):
    request_type: str | None = Field(None, max_length=100)
    priority: Priority | None = None
    desired_from: date | None = None
    desired_to: date | None = None
    subject: str | None = Field(None, min_length=1, max_length=500)
    contact_email: str | None = Field(None, max_length=MAX_ADDRESS_CHARS)
    site_id: int | None = Field(None, ge=1)
    equipment_serial: str | None = Field(None, min_length=1, max_length=100)
    channel: Channel | None = None
    requested_at: str | None = Field(None, max_length=40)
    # The customer's closing mail when the case is resolved; null: as configured.
    notify_customer_on_resolve: bool | None = None

    @field_validator("contact_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("requested_at")
    @classmethod
    def _moment(cls, value: str | None) -> str | None:
        return None if value is None else moment(value)


def archive_links(body: InterventionIn) -> dict[str, Any]:
    """The OpenRequest fields for the archive links and origin of a new intervention."""
    given = body.model_fields_set
    return {
        "contact_email": body.contact_email, "site_id": body.site_id,
        "equipment_serial": body.equipment_serial,
        "links": frozenset(name for name in _LINKS if name in given),
        "channel": body.channel, "requested_at": body.requested_at,
        "language_hint": body.language, "priority_given": "priority" in given,
    }


def edit_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/interventions/{number:int}", h.patch_intervention, methods=["PATCH"]),
        Route("/interventions/{number:int}/hold", h.hold, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def _intervention(self, number: int) -> dict[str, Any]:
        async with self.s.store.read() as conn:
            detail = await queries.get_intervention(conn, number)
            records = await intervention_records(conn, number)
        if detail is None or records is None:
            raise ApiError(404, f"intervention {number} does not exist")
        return {**detail, **records}

    async def hold(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        body = parse_body(self.s, HoldIn, await read_body(request))
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: hold_intervention(
            tx, number, reason=body.reason, now=now, author=token.author))
        log.info("api.intervention_on_hold", intervention=number, token_name=token.name)
        return JSONResponse(await self._intervention(number))

    async def patch_intervention(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        number = path_id(request, "number")
        body = parse_body(self.s, InterventionPatchIn, await read_body(request))
        given = body.model_fields_set
        now = self.s.clock.now()

        def change(tx: WriteTx) -> dict[str, list[Any]]:
            row = tx.execute("SELECT customer_id, desired_from, desired_to FROM interventions"
                             " WHERE number = ?", (number,)).fetchone()
            if row is None:
                raise NotFound(f"intervention {number} does not exist")
            changes: dict[str, Any] = {
                name: getattr(body, name) for name in
                ("request_type", "priority", "desired_from", "desired_to", "subject",
                 "channel", "requested_at") if name in given}
            for name in ("desired_from", "desired_to"):
                if changes.get(name) is not None:
                    changes[name] = changes[name].isoformat()
            if "notify_customer_on_resolve" in given:  # stored 0/1, NULL: as configured
                flag = body.notify_customer_on_resolve
                changes["notify_customer_on_resolve"] = None if flag is None else int(flag)
            if "request_type" in changes:
                changes["request_type"] = changes["request_type"] or ""
            if changes.get("subject") is None:
                changes.pop("subject", None)
            start = changes.get("desired_from", row["desired_from"])
            end = changes.get("desired_to", row["desired_to"])
            if start and end and end < start:
                raise ApiError(422, "desired_to: is before desired_from")
            changes.update(resolve_links(
                tx, row["customer_id"], now=now, contact_email=body.contact_email,
                site_id=body.site_id, equipment_serial=body.equipment_serial,
                given=frozenset(name for name in _LINKS if name in given)))
            return edit_intervention(tx, number, changes, now=now,
                                     author=token.author)

        changed = await self.s.store.write(change)
        log.info("api.intervention_edited", intervention=number, fields=sorted(changed),
                 token_name=token.name)
        return JSONResponse(await self._intervention(number))
