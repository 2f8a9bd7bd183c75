"""Contracts in the JSON API.

- `GET /api/v1/customers/{id}/contracts` → `{"items": [contract...]}`, newest validity
  first; a contract is `{id, customer_id, code, type, valid_from, valid_to,
  response_hours, resolution_hours, prepaid_hours, notes, used_hours,
  remaining_hours, created_at, equipment_ids, schedule_ids}`: the customer's
  machines the contract lists and the service schedules it pays for; `used_hours`
  are the work reports on the interventions it covers, `remaining_hours` null when it
  has no prepaid hours.
- `POST /api/v1/customers/{id}/contracts` `{code, type?, valid_from, valid_to?,
  response_hours?, resolution_hours?, prepaid_hours?, notes?, equipment_ids?[],
  schedule_ids?[]}` → 201 the contract
  (hours are business hours, fractions allowed; null: none). A code the customer
  already has is 409; the customer's open interventions get their deadlines again.
- `PUT /api/v1/customers/{id}/contracts/{contract_id}` the same body → 200 the
  contract with every field replaced; 404 when it is not one of that customer's.
"""

from __future__ import annotations

from datetime import date

import structlog
from pydantic import Field
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
from nexusmail.admin.api.models import _Body
from nexusmail.tickets import contracts
from nexusmail.tickets.contract_links import MAX_LINKS

log = structlog.get_logger(__name__)

MAX_HOURS = contracts.MAX_HOURS


class ContractIn(_Body):
    code: str = Field(min_length=1, max_length=contracts.MAX_CODE_CHARS)
    type: str = Field("", max_length=100)
    valid_from: date
    valid_to: date | None = None
    response_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    resolution_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    prepaid_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    notes: str = Field("", max_length=contracts.MAX_NOTES_CHARS)
    # The customer's own machines and schedules (a PUT replaces them: absent is none).
    equipment_ids: list[int] = Field(default_factory=list, max_length=MAX_LINKS)
    schedule_ids: list[int] = Field(default_factory=list, max_length=MAX_LINKS)


def contract_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/customers/{id:int}/contracts", h.list_contracts, methods=["GET"]),
        Route("/customers/{id:int}/contracts", h.add_contract, methods=["POST"]),
        Route("/customers/{id:int}/contracts/{contract_id:int}", h.replace_contract,
              methods=["PUT"]),
    ]


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    async def list_contracts(self, request: Request) -> Response:
        await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        async with self.s.store.read() as conn:
            known = await conn.execute_fetchall("SELECT 1 FROM customers WHERE id = ?",
                                                (customer_id,))
            if not list(known):
                raise ApiError(404, f"customer {customer_id} does not exist")
            items = await contracts.list_contracts(conn, customer_id)
        return JSONResponse({"items": items})

    async def add_contract(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        body = parse_body(self.s, ContractIn, await read_body(request))
        values = body.model_dump()
        now = self.s.clock.now()
        try:
            contract_id = await self.s.store.write(
                lambda tx: contracts.add_contract(tx, customer_id, values, now=now))
        except contracts.InvalidContract as exc:
            raise ApiError(422, str(exc)) from None
        log.info("api.contract_created", customer_id=customer_id, contract_id=contract_id,
                 token_name=token.name)
        async with self.s.store.read() as conn:
            contract = await contracts.get_contract(conn, contract_id)
        return JSONResponse(contract, status_code=201,
                            headers={"Location": f"/api/v1/customers/{customer_id}/contracts"})

    async def replace_contract(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        customer_id, contract_id = path_id(request, "id"), path_id(request, "contract_id")
        values = parse_body(self.s, ContractIn, await read_body(request)).model_dump()
        now = self.s.clock.now()
        try:
            await self.s.store.write(lambda tx: contracts.update_contract(
                tx, customer_id, contract_id, values, now=now))
        except contracts.InvalidContract as exc:
            raise ApiError(422, str(exc)) from None
        log.info("api.contract_updated", customer_id=customer_id, contract_id=contract_id,
                 token_name=token.name)
        async with self.s.store.read() as conn:
            contract = await contracts.get_contract(conn, contract_id)
        return JSONResponse(contract)
