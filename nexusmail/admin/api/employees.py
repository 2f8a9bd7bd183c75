"""Changing employees in the JSON API.

- `PATCH /api/v1/employees/{email}` with any of `name`, `language` (en|it|ro),
  `active` (false retires them: no new assignments, no mail; true brings them back)
  and `absences` (`[{from, to, reason}]`, whole days, replacing the list) → 200 the
  employee with `absences`; 404 unknown address; 422 naming the field at fault.
- `GET /api/v1/employees/{email}` → the employee with their `absences`.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import structlog
from pydantic import Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import ApiServices, authenticate, parse_body, read_body
from nexusmail.admin.api.models import _Body
from nexusmail.tickets import queries
from nexusmail.tickets.cases import NotFound
from nexusmail.tickets.employees import (
    MAX_ABSENCES,
    MAX_REASON_CHARS,
    Absence,
    EmployeeChange,
    absences,
    update_employee,
)

log = structlog.get_logger(__name__)


class AbsenceIn(_Body):
    starts_on: date = Field(alias="from")
    ends_on: date = Field(alias="to")
    reason: str = Field("", max_length=MAX_REASON_CHARS)

    @model_validator(mode="after")
    def _in_order(self) -> AbsenceIn:
        if self.ends_on < self.starts_on:
            raise ValueError("to: is before from")
        return self


class EmployeePatchIn(_Body):
    name: str | None = Field(None, min_length=1, max_length=200)
    language: Literal["en", "it", "ro"] | None = None
    active: bool | None = None
    absences: list[AbsenceIn] | None = Field(None, max_length=MAX_ABSENCES)


def employee_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [Route("/employees/{email}", h.patch, methods=["PATCH"]),
            Route("/employees/{email}", h.get, methods=["GET"])]


async def employee_with_absences(services: ApiServices, employee_id: int) -> dict[str, Any]:
    async with services.store.read() as conn:
        employee = await queries.get_employee(conn, employee_id)
        if employee is None:
            raise NotFound(f"employee {employee_id} does not exist")
        away = await absences(conn, [employee_id])
    return {**employee, "absences": [
        {"from": a["starts_on"], "to": a["ends_on"], "reason": a["reason"]}
        for a in away.get(employee_id, [])]}


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def get(self, request: Request) -> Response:
        await authenticate(self.s, request)
        email = request.path_params["email"].strip().lower()
        async with self.s.store.read() as conn:
            rows = list(await conn.execute_fetchall(
                "SELECT id FROM employees WHERE email = ?", (email,)))
        if not rows:
            raise NotFound(f"employee {email} does not exist")
        return JSONResponse(await employee_with_absences(self.s, int(rows[0][0])))

    async def patch(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        email = request.path_params["email"].strip().lower()
        body = parse_body(self.s, EmployeePatchIn, await read_body(request))
        change = EmployeeChange(
            name=body.name, language=body.language, active=body.active,
            absences=None if body.absences is None else [
                Absence(a.starts_on, a.ends_on, a.reason) for a in body.absences])
        now = self.s.clock.now()
        employee_id = await self.s.store.write(
            lambda tx: update_employee(tx, email, change, now=now))
        log.info("api.employee_changed", employee=email, token_name=token.name,
                 fields=sorted(body.model_fields_set))
        return JSONResponse(await employee_with_absences(self.s, employee_id))
