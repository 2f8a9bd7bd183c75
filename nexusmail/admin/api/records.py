"""The archive's routes of the JSON API: customers, contacts, sites, equipment, request
types, and merging customers.

- `GET /api/v1/customers?q=&limit=1..200&offset=` → `{"items": [customer...], "total",
  "limit", "offset"}` by name; `q` finds part of a name, tax id, email or phone (the
  customer's or a contact's) or a mail domain. Merged customers are not listed.
- `POST /api/v1/customers` `{name, tax_id?, address?, phone?, work_phone?, email?,
  language?, notes?, mail_domains?[], owner?, verified?}` → 201 the customer:
  `{id, name, tax_id, address, phone, work_phone, email, language, notes,
  mail_domains[], owner, verified, merged_into, created_at}`. `owner` is an operator's
  email (422 when no active operator has it; without one, `[customers] default_owner`);
  a domain held by another customer is 409.
- `GET /api/v1/customers/{id}` → the customer (a merged one too, `merged_into` set);
  `PATCH` any of the fields above → 200 the customer (409 for a merged one).
- `GET|POST /api/v1/customers/{id}/contacts` → `{"items": [contact...]}` | 201 the
  contact `{id, customer_id, name, email, phone, role, preferred_channel, language,
  verified}`; `PATCH /api/v1/contacts/{id}`. An address already a contact's is 409.
- `GET|POST /api/v1/customers/{id}/sites` → `{"items": [site...]}` | 201 the site
  `{id, customer_id, name, address, access_notes}`; `PATCH /api/v1/sites/{id}`.
- `GET /api/v1/equipment?customer=&site=&serial=&limit=&offset=` → a page of
  `{id, customer_id, site_id, serial, model, description, installed_on,
  warranty_until, notes}`; `POST` → 201; `GET|PATCH /api/v1/equipment/{id}` adds
  `interventions[]` (`{number, subject, status, status_reason, request_type,
  created_at, closed_at}`, newest first). A serial the customer already has is 409.
- `GET|POST /api/v1/request-types` → `{"items": [...]}` | 201 `{code, names{en,it,ro},
  default_priority, default_assignees[]}`; `PATCH /api/v1/request-types/{code}`.
- `POST /api/v1/customers/{id}/merge` `{into}` → 200 the customer merged into (see
  nexusmail.records.merge for what moves).
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import (
    MAX_ID,
    ApiError,
    ApiServices,
    authenticate,
    int_param,
    parse_body,
    path_id,
    read_body,
)
from nexusmail.admin.api.records_models import (
    ContactIn,
    ContactPatch,
    CustomerIn,
    CustomerPatch,
    EquipmentIn,
    EquipmentPatch,
    MergeIn,
    RequestTypeIn,
    RequestTypePatch,
    SiteIn,
    SitePatch,
    every,
    sent,
)
from nexusmail.records import contacts, customers, equipment, request_types, sites
from nexusmail.records.customer_search import MAX_QUERY_CHARS, search_customers
from nexusmail.records.merge import merge_customers
from nexusmail.tickets import visibility

log = structlog.get_logger(__name__)

MAX_PAGE = 200


def record_routes(services: ApiServices) -> list[Route]:
    h = _Handlers(services)
    return [
        Route("/customers", h.list_customers, methods=["GET"]),
        Route("/customers", h.create_customer, methods=["POST"]),
        Route("/customers/{id:int}", h.get_customer, methods=["GET"]),
        Route("/customers/{id:int}", h.patch_customer, methods=["PATCH"]),
        Route("/customers/{id:int}/merge", h.merge, methods=["POST"]),
        Route("/customers/{id:int}/contacts", h.list_contacts, methods=["GET"]),
        Route("/customers/{id:int}/contacts", h.add_contact, methods=["POST"]),
        Route("/contacts/{id:int}", h.patch_contact, methods=["PATCH"]),
        Route("/customers/{id:int}/sites", h.list_sites, methods=["GET"]),
        Route("/customers/{id:int}/sites", h.add_site, methods=["POST"]),
        Route("/sites/{id:int}", h.patch_site, methods=["PATCH"]),
        Route("/equipment", h.list_equipment, methods=["GET"]),
        Route("/equipment", h.add_equipment, methods=["POST"]),
        Route("/equipment/{id:int}", h.get_equipment, methods=["GET"]),
        Route("/equipment/{id:int}", h.patch_equipment, methods=["PATCH"]),
        Route("/request-types", h.list_request_types, methods=["GET"]),
        Route("/request-types", h.add_request_type, methods=["POST"]),
        Route("/request-types/{code}", h.patch_request_type, methods=["PATCH"]),
    ]


def _changes(body: Any) -> dict[str, Any]:
    changes = sent(body)
    if not changes:
        raise ApiError(422, "body: send at least one field to change")
    return changes


class _Handlers:
    def __init__(self, services: ApiServices) -> None:
        self.s = services

    # Customers

    async def list_customers(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        params = request.query_params
        q = params.get("q") or None
        if q is not None and len(q) > MAX_QUERY_CHARS:
            raise ApiError(422, f"q: is longer than {MAX_QUERY_CHARS} characters")
        limit = int_param(params.get("limit"), "limit", default=50, low=1, high=MAX_PAGE)
        offset = int_param(params.get("offset"), "offset", default=0, low=0, high=MAX_ID)
        async with self.s.store.read() as conn:
            page = await search_customers(
                conn, q, limit=limit, offset=offset,
                owner=token.operator.owner_limit if token.operator else None)
        return JSONResponse(page)

    async def create_customer(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        values = every(parse_body(self.s, CustomerIn, await read_body(request)))
        now, owner = self.s.clock.now(), self.s.settings.customers.default_owner or None
        customer_id = await self.s.store.write(
            lambda tx: customers.create_customer(tx, values, now=now, default_owner=owner))
        log.info("api.customer_created", customer_id=customer_id, token_name=token.name)
        return JSONResponse(await self._customer(customer_id), status_code=201,
                            headers={"Location": f"/api/v1/customers/{customer_id}"})

    async def get_customer(self, request: Request) -> Response:
        await authenticate(self.s, request)
        return JSONResponse(await self._customer(path_id(request, "id")))

    async def patch_customer(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        changes = _changes(parse_body(self.s, CustomerPatch, await read_body(request)))
        now = self.s.clock.now()
        await self.s.store.write(
            lambda tx: customers.update_customer(tx, customer_id, changes, now=now))
        log.info("api.customer_updated", customer_id=customer_id, fields=sorted(changes),
                 token_name=token.name)
        return JSONResponse(await self._customer(customer_id))

    async def merge(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        source = path_id(request, "id")
        into = parse_body(self.s, MergeIn, await read_body(request)).into
        now = self.s.clock.now()
        moved = await self.s.store.write(
            lambda tx: merge_customers(
                tx, source, into, now=now,
                owner=token.operator.owner_limit if token.operator else None))
        log.info("api.customers_merged", customer_id=source, into=into,
                 contacts=moved.contacts, sites=moved.sites, equipment=moved.equipment,
                 interventions=moved.interventions, token_name=token.name)
        return JSONResponse(await self._customer(into))

    # Contacts and sites

    async def list_contacts(self, request: Request) -> Response:
        await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        async with self.s.store.read() as conn:
            await self._require_customer(conn, customer_id)
            items = await contacts.list_contacts(conn, customer_id)
        return JSONResponse({"items": items})

    async def add_contact(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        values = every(parse_body(self.s, ContactIn, await read_body(request)))
        now = self.s.clock.now()
        contact_id = await self.s.store.write(
            lambda tx: contacts.add_contact(tx, customer_id, values, now=now))
        log.info("api.contact_created", customer_id=customer_id, contact_id=contact_id,
                 token_name=token.name)
        return JSONResponse(await self._contact(contact_id), status_code=201)

    async def patch_contact(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        contact_id = path_id(request, "id")
        changes = _changes(parse_body(self.s, ContactPatch, await read_body(request)))
        await self.s.store.write(lambda tx: contacts.update_contact(tx, contact_id, changes))
        log.info("api.contact_updated", contact_id=contact_id, fields=sorted(changes),
                 token_name=token.name)
        return JSONResponse(await self._contact(contact_id))

    async def list_sites(self, request: Request) -> Response:
        await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        async with self.s.store.read() as conn:
            await self._require_customer(conn, customer_id)
            items = await sites.list_sites(conn, customer_id)
        return JSONResponse({"items": items})

    async def add_site(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        customer_id = path_id(request, "id")
        values = every(parse_body(self.s, SiteIn, await read_body(request)))
        now = self.s.clock.now()
        site_id = await self.s.store.write(
            lambda tx: sites.add_site(tx, customer_id, values, now=now))
        log.info("api.site_created", customer_id=customer_id, site_id=site_id,
                 token_name=token.name)
        return JSONResponse(await self._site(site_id), status_code=201)

    async def patch_site(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        site_id = path_id(request, "id")
        changes = _changes(parse_body(self.s, SitePatch, await read_body(request)))
        now = self.s.clock.now()
        await self.s.store.write(lambda tx: sites.update_site(tx, site_id, changes, now=now))
        log.info("api.site_updated", site_id=site_id, fields=sorted(changes),
                 token_name=token.name)
        return JSONResponse(await self._site(site_id))

    # Equipment

    async def list_equipment(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        params = request.query_params
        customer = params.get("customer") or None
        site = params.get("site") or None
        limit = int_param(params.get("limit"), "limit", default=50, low=1, high=MAX_PAGE)
        offset = int_param(params.get("offset"), "offset", default=0, low=0, high=MAX_ID)
        async with self.s.store.read() as conn:
            page = await equipment.find_equipment(
                conn,
                customer_id=int_param(customer, "customer", default=0, low=1, high=MAX_ID)
                if customer else None,
                site_id=int_param(site, "site", default=0, low=1, high=MAX_ID)
                if site else None,
                serial_text=params.get("serial"), limit=limit, offset=offset,
                owner=token.operator.owner_limit if token.operator else None)
        return JSONResponse(page)

    async def add_equipment(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        values = every(parse_body(self.s, EquipmentIn, await read_body(request)))
        if token.operator and token.operator.owner_limit is not None:
            # The path names no customer, the body does: the same limit, checked here.
            async with self.s.store.read() as conn:
                if not await visibility.may_see(conn, "customer", values["customer_id"],
                                                token.operator.owner_limit):
                    raise ApiError(404, f"customer {values['customer_id']} does not exist")
        now = self.s.clock.now()
        equipment_id = await self.s.store.write(
            lambda tx: equipment.add_equipment(tx, values, now=now))
        log.info("api.equipment_created", equipment_id=equipment_id,
                 customer_id=values["customer_id"], token_name=token.name)
        return JSONResponse(await self._equipment(equipment_id), status_code=201,
                            headers={"Location": f"/api/v1/equipment/{equipment_id}"})

    async def get_equipment(self, request: Request) -> Response:
        await authenticate(self.s, request)
        return JSONResponse(await self._equipment(path_id(request, "id")))

    async def patch_equipment(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        equipment_id = path_id(request, "id")
        changes = _changes(parse_body(self.s, EquipmentPatch, await read_body(request)))
        now = self.s.clock.now()
        await self.s.store.write(
            lambda tx: equipment.update_equipment(tx, equipment_id, changes, now=now))
        log.info("api.equipment_updated", equipment_id=equipment_id, fields=sorted(changes),
                 token_name=token.name)
        return JSONResponse(await self._equipment(equipment_id))

    # Request types

    async def list_request_types(self, request: Request) -> Response:
        await authenticate(self.s, request)
        async with self.s.store.read() as conn:
            items = await request_types.list_request_types(conn)
        return JSONResponse({"items": items})

    async def add_request_type(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        values = every(parse_body(self.s, RequestTypeIn, await read_body(request)))
        code = await self.s.store.write(
            lambda tx: request_types.create_request_type(tx, values))
        log.info("api.request_type_created", code=code, token_name=token.name)
        return JSONResponse(await self._request_type(code), status_code=201)

    async def patch_request_type(self, request: Request) -> Response:
        token = await authenticate(self.s, request)
        code = str(request.path_params["code"])
        changes = _changes(parse_body(self.s, RequestTypePatch, await read_body(request)))
        await self.s.store.write(
            lambda tx: request_types.update_request_type(tx, code, changes))
        log.info("api.request_type_updated", code=code, fields=sorted(changes),
                 token_name=token.name)
        return JSONResponse(await self._request_type(code))

    # Reads after a write, each a 404 when the record is not there

    async def _customer(self, customer_id: int) -> customers.CustomerView:
        async with self.s.store.read() as conn:
            found = await customers.get_customer(conn, customer_id)
        if found is None:
            raise ApiError(404, f"customer {customer_id} does not exist")
        return found

    async def _require_customer(self, conn: Any, customer_id: int) -> None:
        if await customers.get_customer(conn, customer_id) is None:
            raise ApiError(404, f"customer {customer_id} does not exist")

    async def _contact(self, contact_id: int) -> contacts.ContactView:
        async with self.s.store.read() as conn:
            found = await contacts.get_contact(conn, contact_id)
        if found is None:
            raise ApiError(404, f"contact {contact_id} does not exist")
        return found

    async def _site(self, site_id: int) -> sites.SiteView:
        async with self.s.store.read() as conn:
            found = await sites.get_site(conn, site_id)
        if found is None:
            raise ApiError(404, f"site {site_id} does not exist")
        return found

    async def _equipment(self, equipment_id: int) -> equipment.EquipmentDetail:
        async with self.s.store.read() as conn:
            found = await equipment.get_equipment(conn, equipment_id)
        if found is None:
            raise ApiError(404, f"equipment {equipment_id} does not exist")
        return found

    async def _request_type(self, code: str) -> request_types.RequestTypeView:
        async with self.s.store.read() as conn:
            found = await request_types.get_request_type(conn, code)
        if found is None:
            raise ApiError(404, f"request type {code} does not exist")
        return found
