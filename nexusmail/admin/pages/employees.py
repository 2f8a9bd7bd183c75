"""Employees on the admin page: add one, change their details, retire or bring them
back, and record when they are away."""

from __future__ import annotations

from datetime import date

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import LANGUAGES, msg
from nexusmail.mail.addresses import check_address
from nexusmail.tickets import queries
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.employees import (
    MAX_REASON_CHARS,
    Absence,
    EmployeeChange,
    absences,
    update_employee,
)

log = structlog.get_logger(__name__)


def employee_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/employees", h.add, methods=["POST"]),
        Route("/employees/{id:int}", h.card, methods=["GET"]),
        Route("/employees/{id:int}", h.save, methods=["POST"]),
        Route("/employees/{id:int}/absences", h.add_absence, methods=["POST"]),
        Route("/employees/{id:int}/absences/remove", h.remove_absence, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def add(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        form = await _form(request)
        email = form_text(form, "email", 254).lower()
        name = form_text(form, "name", 200)
        language = _language(form)
        try:
            check_address(email)
        except ValueError:
            raise PageError(422, msg("{address} is not an email address.",
                                     address=email)) from None
        if not name:
            raise PageError(422, msg("An employee needs a name."))
        now = self.p.services.clock.now()
        employee_id = await self.p.services.store.write(lambda tx: add_employee(
            tx, email=email, name=name, language=language, now=now))
        log.info("admin.employee_added", employee=email, operator=operator.email)
        return redirect(f"/employees/{employee_id}", msg("Employee added."), request)

    async def card(self, request: Request) -> Response:
        await self.p.operator(request)
        employee_id = _id(request)
        async with self.p.services.store.read() as conn:
            employee = await queries.get_employee(conn, employee_id)
            away = await absences(conn, [employee_id])
        if employee is None:
            raise PageError(404, msg("Employee {id} does not exist.", id=employee_id))
        return self.p.render(request, "employee.html.j2", e=employee,
                             absences=away.get(employee_id, []), languages=LANGUAGES)

    async def save(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        form = await _form(request)
        change = EmployeeChange(name=form_text(form, "name", 200) or None,
                                language=_language(form), active=form.get("active") == "on")
        email = await self._change(request, change)
        log.info("admin.employee_changed", employee=email, active=change.active,
                 operator=operator.email)
        return redirect(f"/employees/{_id(request)}", msg("Details saved."), request)

    async def add_absence(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        form = await _form(request)
        try:
            new = Absence(date.fromisoformat(form_text(form, "from", 10)),
                          date.fromisoformat(form_text(form, "to", 10) or
                                             form_text(form, "from", 10)),
                          form_text(form, "reason", MAX_REASON_CHARS))
        except ValueError:
            raise PageError(422, msg("Give the first and last day away, in order.")) from None
        current = await self._absences(request)
        email = await self._change(request, EmployeeChange(absences=[*current, new]))
        log.info("admin.absence_added", employee=email, starts_on=str(new.starts_on),
                 operator=operator.email)
        return redirect(f"/employees/{_id(request)}", msg("Absence recorded."), request)

    async def remove_absence(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        form = await _form(request)
        starts_on = form_text(form, "from", 10)
        kept = [a for a in await self._absences(request) if a.starts_on.isoformat() != starts_on]
        email = await self._change(request, EmployeeChange(absences=kept))
        log.info("admin.absence_removed", employee=email, starts_on=starts_on,
                 operator=operator.email)
        return redirect(f"/employees/{_id(request)}", msg("Absence removed."), request)

    async def _absences(self, request: Request) -> list[Absence]:
        employee_id = _id(request)
        async with self.p.services.store.read() as conn:
            away = await absences(conn, [employee_id])
        return [Absence(date.fromisoformat(a["starts_on"]), date.fromisoformat(a["ends_on"]),
                        a["reason"]) for a in away.get(employee_id, [])]

    async def _change(self, request: Request, change: EmployeeChange) -> str:
        employee_id = _id(request)
        async with self.p.services.store.read() as conn:
            employee = await queries.get_employee(conn, employee_id)
        if employee is None:
            raise PageError(404, msg("Employee {id} does not exist.", id=employee_id))
        now = self.p.services.clock.now()
        await self.p.services.store.write(
            lambda tx: update_employee(tx, employee["email"], change, now=now))
        return employee["email"]


async def _form(request: Request) -> FormData:
    async with request.form(max_files=0, max_fields=20) as form:
        check_csrf(request, form)
        return form


def _language(form: FormData) -> str:
    language = form_text(form, "language", 5)
    if language not in LANGUAGES:
        raise PageError(422, msg("Choose one of the languages listed."))
    return language


def _id(request: Request) -> int:
    value = int(request.path_params["id"])
    if value > MAX_ID:
        raise PageError(404, msg("Employee {id} does not exist.", id=value))
    return value
