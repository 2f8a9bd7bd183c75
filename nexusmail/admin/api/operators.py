"""Operators in the JSON API (admin only: admin.permissions refuses the others with 403).

- `GET /api/v1/operators` → `{"items": [operator...]}`, oldest first; an operator is
  `{id, email, name, role, language, own_customers_only, active, created_at,
  updated_at}` (never the password hash).
- `POST /api/v1/operators` `{email, password, name?, role?, language?,
  own_customers_only?}` → 201 the operator; without a role the first operator is admin,
  later ones dispatcher; 409 when the address is taken.
- `GET /api/v1/operators/{email}` → the operator; 404 unknown address.
- `PATCH /api/v1/operators/{email}` with any of `name`, `role`, `language` (null: the
  browser's), `own_customers_only`, `active` (false retires them: no login, sessions
  and their tokens end), `password` (a new one: their sessions end) → 200 the
  operator; 409 when it would demote or retire the last active admin.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import structlog
from pydantic import Field, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import ApiServices, authenticate, parse_body, read_body
from nexusmail.admin.api.models import MAX_ADDRESS_CHARS, _Body
from nexusmail.mail.addresses import check_address
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import operators
from nexusmail.tickets.cases import NotFound
from nexusmail.tickets.operator_admin import (
    KEEP,
    OperatorChange,
    change_operator,
    operator_record,
    operator_records,
    set_operator_active,
)
from nexusmail.tickets.operators import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS

log = structlog.get_logger(__name__)

Role = Literal["admin", "dispatcher", "viewer"]
Language = Literal["en", "it", "ro"]


class OperatorIn(_Body):
    email: str = Field(max_length=MAX_ADDRESS_CHARS)
    password: str = Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)
    name: str = Field("", max_length=200)
    role: Role | None = None
    language: Language | None = None
    own_customers_only: bool = False

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_address(value)


class OperatorPatchIn(_Body):
    name: str | None = Field(None, max_length=200)
    role: Role | None = None
    language: Language | None = None
    own_customers_only: bool | None = None
    active: bool | None = None
    password: str | None = Field(None, min_length=MIN_PASSWORD_CHARS,
                                 max_length=MAX_PASSWORD_CHARS)


def operator_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [Route("/operators", h.list, methods=["GET"]),
            Route("/operators", h.create, methods=["POST"]),
            Route("/operators/{email}", h.get, methods=["GET"]),
            Route("/operators/{email}", h.patch, methods=["PATCH"])]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def _record(self, email: str) -> dict[str, Any]:
        async with self.s.store.read() as conn:
            record = await operator_record(conn, email=email)
        if record is None:
            raise NotFound(f"no operator with address {email}")
        return record

    async def list(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            return JSONResponse({"items": await operator_records(conn)})

    async def get(self, request: Request) -> Response:
        await authenticate(self.s, request)
        return JSONResponse(await self._record(request.path_params["email"]))

    async def create(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        body = parse_body(self.s, OperatorIn, await read_body(request))
        password_hash = await asyncio.to_thread(operators.hash_password, body.password)
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: operators.add_operator(
            tx, email=body.email, name=body.name, password_hash=password_hash, now=now,
            language=body.language, role=body.role,
            own_customers_only=body.own_customers_only))
        log.info("api.operator_added", operator=body.email, token_name=token.name)
        return JSONResponse(await self._record(body.email), status_code=201,
                            headers={"Location": f"/api/v1/operators/{body.email}"})

    async def patch(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        email = request.path_params["email"].strip().lower()
        body = parse_body(self.s, OperatorPatchIn, await read_body(request))
        given = body.model_fields_set
        change = OperatorChange(
            name=body.name if body.name is not None else KEEP,
            role=body.role if body.role is not None else KEEP,
            language=body.language if "language" in given else KEEP,
            own_customers_only=(body.own_customers_only
                                if body.own_customers_only is not None else KEEP))
        password_hash = (None if body.password is None else
                         await asyncio.to_thread(operators.hash_password, body.password))
        now = self.s.clock.now()

        def apply(tx: WriteTx) -> None:
            # One transaction: a refused part (the last admin) leaves the rest undone.
            change_operator(tx, email, change, now=now)
            if body.active is not None:
                set_operator_active(tx, email, active=body.active, now=now)
            if password_hash is not None:
                operators.set_password(tx, email=email, password_hash=password_hash,
                                       now=now)

        await self.s.store.write(apply)
        log.info("api.operator_changed", operator=email, token_name=token.name,
                 fields=sorted(given - {"password"}), password_changed=password_hash
                 is not None)
        return JSONResponse(await self._record(email))
