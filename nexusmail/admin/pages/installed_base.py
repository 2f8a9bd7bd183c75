"""The equipment card (a machine, its site and its intervention history, with an edit
form), and the request types: the list with a form for a new type, and each type's page
with its edit form. The forms' values go to the same records functions as the API's
routes, so a page refuses exactly what the API refuses, naming the same field."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import LANGUAGES, msg
from nexusmail.records import customers, equipment, request_types, sites
from nexusmail.records.fields import InvalidRecord, refusal_message
from nexusmail.tickets import queries
from nexusmail.tickets.cases import Conflict

log = structlog.get_logger(__name__)

MAX_FORM_BYTES = 256 * 1024
EQUIPMENT_TEXT = ("serial", "model", "description", "installed_on", "warranty_until",
                  "notes")


def installed_base_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/equipment/{id:int}", h.card, methods=["GET"]),
        Route("/equipment/{id:int}", h.edit, methods=["POST"]),
        Route("/request-types", h.request_types, methods=["GET"]),
        Route("/request-types", h.add_request_type, methods=["POST"]),
        Route("/request-types/{code}", h.request_type, methods=["GET"]),
        Route("/request-types/{code}", h.edit_request_type, methods=["POST"]),
    ]


def request_type_values(form: FormData) -> dict[str, Any]:
    """The type's form as the records functions take it: every field, so an empty one
    clears (hours: back to the default; closing mail: as configured) and the ticked
    employees replace the default assignees."""
    return {
        "names": {lang: form_text(form, f"name_{lang}", 100) for lang in LANGUAGES},
        "default_priority": form_text(form, "default_priority", 20),
        "default_assignees": [a for a in form.getlist("default_assignees")
                              if isinstance(a, str)],
        "response_hours": form_text(form, "response_hours", 20),
        "resolution_hours": form_text(form, "resolution_hours", 20),
        # "": as configured; anything but yes/no is read as that too.
        "customer_closing_mail": {"yes": True, "no": False}.get(
            form_text(form, "customer_closing_mail", 3) or ""),
    }


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def card(self, request: Request) -> Response:
        await self.p.operator(request)
        return await self._card(request, _id(request))

    async def edit(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        equipment_id = _id(request)
        async with request.form(max_files=0, max_fields=50,
                                max_part_size=MAX_FORM_BYTES) as form:
            check_csrf(request, form)
            values: dict[str, Any] = {name: form_text(form, name) for name in EQUIPMENT_TEXT}
            site = form_text(form, "site_id")
        values["site_id"] = int(site) if site.isdigit() and int(site) <= MAX_ID else None
        now = self.p.services.clock.now()
        try:
            await self.p.services.store.write(
                lambda tx: equipment.update_equipment(tx, equipment_id, values, now=now))
        except (InvalidRecord, Conflict) as exc:
            return await self._card(request, equipment_id,
                                    self.p.text(request, refusal_message(exc)),
                                    409 if isinstance(exc, Conflict) else 422)
        log.info("admin.equipment_updated", equipment_id=equipment_id,
                 operator=operator.email)
        return redirect(f"/equipment/{equipment_id}", msg("Equipment saved."), request)

    async def _card(self, request: Request, equipment_id: int, error: str | None = None,
                    status: int = 200) -> Response:
        async with self.p.services.store.read() as conn:
            machine = await equipment.get_equipment(conn, equipment_id)
            if machine is None:
                raise PageError(404, msg("Equipment {id} does not exist.", id=equipment_id))
            customer = await customers.get_customer(conn, machine["customer_id"])
            places = await sites.list_sites(conn, machine["customer_id"])
        site = next((s for s in places if s["id"] == machine["site_id"]), None)
        today = self.p.services.clock.now().date().isoformat()
        return self.p.render(request, "equipment.html.j2", status=status, e=machine,
                             customer=customer, sites=places, site=site, today=today,
                             error=error)

    async def request_types(self, request: Request) -> Response:
        await self.p.operator(request)
        return await self._types(request)

    async def add_request_type(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        async with request.form(max_files=0, max_fields=100,
                                max_part_size=MAX_FORM_BYTES) as form:
            check_csrf(request, form)
            values = {"code": form_text(form, "code", request_types.MAX_CODE_CHARS),
                      **request_type_values(form)}
        try:
            code = await self.p.services.store.write(
                lambda tx: request_types.create_request_type(tx, values))
        except (InvalidRecord, Conflict) as exc:
            return await self._types(request, values,
                                     self.p.text(request, refusal_message(exc)),
                                     409 if isinstance(exc, Conflict) else 422)
        log.info("admin.request_type_created", code=code, operator=operator.email)
        return redirect("/request-types", msg("Request type {code} added.", code=code), request)

    async def request_type(self, request: Request) -> Response:
        await self.p.operator(request)
        return await self._type(request, _code(request))

    async def edit_request_type(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        code = _code(request)
        async with request.form(max_files=0, max_fields=100,
                                max_part_size=MAX_FORM_BYTES) as form:
            check_csrf(request, form)
            values = request_type_values(form)
        try:
            await self.p.services.store.write(
                lambda tx: request_types.update_request_type(tx, code, values))
        except InvalidRecord as exc:
            return await self._type(request, code, values,
                                    self.p.text(request, refusal_message(exc)), 422)
        log.info("admin.request_type_updated", code=code, operator=operator.email)
        return redirect(f"/request-types/{quote(code, safe='')}",
                        msg("Request type {code} saved.", code=code), request)

    async def _type(self, request: Request, code: str, values: dict[str, Any] | None = None,
                    error: str | None = None, status: int = 200) -> Response:
        """One type's page: its edit form, filled from the store or, after a refusal,
        with what the operator typed."""
        async with self.p.services.store.read() as conn:
            kind = await request_types.get_request_type(conn, code)
            employees = [e for e in await queries.list_employees(conn) if e["active"]]
        if kind is None:
            raise PageError(404, msg("Request type {code} does not exist.", code=code))
        return self.p.render(request, "request_type.html.j2", status=status, kind=kind,
                             employees=employees, values=values or dict(kind), error=error)

    async def _types(self, request: Request, values: dict[str, Any] | None = None,
                     error: str | None = None, status: int = 200) -> Response:
        async with self.p.services.store.read() as conn:
            kinds = await request_types.list_request_types(conn)
            employees = [e for e in await queries.list_employees(conn) if e["active"]]
        return self.p.render(request, "request_types.html.j2", status=status, kinds=kinds,
                             employees=employees, values=values or {}, error=error)


def _code(request: Request) -> str:
    # Longer than any code the list accepts: no such type, without reading the store.
    code = str(request.path_params["code"])
    if len(code) > request_types.MAX_CODE_CHARS:
        raise PageError(404, msg("Request type {code} does not exist.",
                                 code=code[:request_types.MAX_CODE_CHARS]))
    return code


def _id(request: Request) -> int:
    value = int(request.path_params["id"])
    if value > MAX_ID:
        raise PageError(404, msg("Equipment {id} does not exist.", id=value))
    return value
