"""The customer archive on the admin page: the customers list with search and a form for
a new one, and the customer card (details, contacts, sites, equipment, contracts,
interventions) with its edit and add forms and merging.

Every form posts with the session's CSRF token and ends in a redirect to the card
(303, so a reload does not post again); a refused value shows the card again with the
message naming the field (422), a clash (409) the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import Msg, msg
from nexusmail.records import contacts, customers, equipment, sites
from nexusmail.records.customer_search import MAX_QUERY_CHARS, search_customers
from nexusmail.records.fields import InvalidRecord, refusal_message
from nexusmail.records.links import customer_interventions
from nexusmail.records.merge import merge_customers
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import contracts
from nexusmail.tickets.cases import Conflict
from nexusmail.tickets.contract_links import LINK_FIELDS, MAX_LINKS, customer_schedules

log = structlog.get_logger(__name__)

PAGE_SIZE = 50
MAX_FORM_BYTES = 256 * 1024
CUSTOMER_TEXT = ("name", "tax_id", "address", "phone", "work_phone", "email", "language",
                 "notes", "mail_domains", "owner")
CONTACT_TEXT = ("name", "email", "phone", "role", "preferred_channel", "language")
SITE_TEXT = ("name", "address", "access_notes")
EQUIPMENT_TEXT = ("serial", "model", "description", "installed_on", "warranty_until",
                  "notes")
CONTRACT_TEXT = {"code": contracts.MAX_CODE_CHARS, "type": 100, "valid_from": 10,
                 "valid_to": 10, "response_hours": 20, "resolution_hours": 20,
                 "prepaid_hours": 20, "notes": contracts.MAX_NOTES_CHARS}


def customer_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/customers", h.customers, methods=["GET"]),
        Route("/customers", h.create, methods=["POST"]),
        Route("/customers/{id:int}", h.card, methods=["GET"]),
        Route("/customers/{id:int}", h.edit, methods=["POST"]),
        Route("/customers/{id:int}/contacts", h.add_contact, methods=["POST"]),
        Route("/customers/{id:int}/contacts/{item:int}", h.edit_contact, methods=["POST"]),
        Route("/customers/{id:int}/sites", h.add_site, methods=["POST"]),
        Route("/customers/{id:int}/sites/{item:int}", h.edit_site, methods=["POST"]),
        Route("/customers/{id:int}/equipment", h.add_equipment, methods=["POST"]),
        Route("/customers/{id:int}/contracts", h.add_contract, methods=["POST"]),
        Route("/customers/{id:int}/contracts/{item:int}", h.edit_contract, methods=["POST"]),
        Route("/customers/{id:int}/merge", h.merge, methods=["POST"]),
    ]


def customer_values(form: FormData) -> dict[str, Any]:
    """The customer form as the records functions take it: every field (an empty one
    clears), domains as typed (spaces, commas or `|` between them)."""
    values: dict[str, Any] = {name: form_text(form, name) for name in CUSTOMER_TEXT}
    values["verified"] = form.get("verified") == "on"
    return values


def contract_values(form: FormData) -> dict[str, Any]:
    """The contract form as typed: the contract's own checks read the dates and hours
    (empty: none); the ticked machines and schedules replace its links."""
    values: dict[str, Any] = {name: form_text(form, name, most)
                              for name, most in CONTRACT_TEXT.items()}
    for field in LINK_FIELDS:
        values[field] = [v for v in form.getlist(field) if isinstance(v, str)]
    return values


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def customers(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        q = request.query_params.get("q", "").strip()[:MAX_QUERY_CHARS]
        offset = _int(request.query_params.get("offset")) or 0
        async with self.p.services.store.read() as conn:
            page = await search_customers(conn, q or None, limit=PAGE_SIZE, offset=offset,
                                          owner=operator.owner_limit)

        def link(at: int) -> str:
            return "/customers?" + urlencode({**({"q": q} if q else {}), "offset": at})

        more = offset + PAGE_SIZE < page["total"]
        return self.p.render(
            request, "customers.html.j2", page=page, q=q, values={"owner": operator.email},
            error=None, next_url=link(offset + PAGE_SIZE) if more else None,
            previous_url=link(max(offset - PAGE_SIZE, 0)) if offset else None)

    async def create(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        form = await self._form(request)
        values = customer_values(form)
        now = self.p.services.clock.now()
        try:
            customer_id = await self.p.services.store.write(
                lambda tx: customers.create_customer(tx, values, now=now))
        except (InvalidRecord, Conflict) as exc:
            async with self.p.services.store.read() as conn:
                page = await search_customers(conn, None, limit=PAGE_SIZE)
            return self.p.render(request, "customers.html.j2", status=_status(exc),
                                 page=page, q="", values=values,
                                 error=self.p.text(request, refusal_message(exc)),
                                 next_url=None, previous_url=None)
        log.info("admin.customer_created", customer_id=customer_id, operator=operator.email)
        return redirect(f"/customers/{customer_id}", msg("Customer added."), request)

    async def card(self, request: Request) -> Response:
        await self.p.operator(request)
        return await self._card(request, _id(request))

    async def edit(self, request: Request) -> Response:
        form = await self._form(request)
        values = customer_values(form)
        return await self._change(request, msg("Details saved."), "admin.customer_updated",
                                  lambda tx, cid, now: customers.update_customer(
                                      tx, cid, values, now=now))

    async def add_contact(self, request: Request) -> Response:
        form = await self._form(request)
        values = {name: form_text(form, name) for name in CONTACT_TEXT}
        return await self._change(request, msg("Contact added."), "admin.contact_created",
                                  lambda tx, cid, now: contacts.add_contact(
                                      tx, cid, values, now=now))

    async def add_site(self, request: Request) -> Response:
        form = await self._form(request)
        values = {name: form_text(form, name) for name in SITE_TEXT}
        return await self._change(request, msg("Site added."), "admin.site_created",
                                  lambda tx, cid, now: sites.add_site(tx, cid, values,
                                                                      now=now))

    async def edit_contact(self, request: Request) -> Response:
        form = await self._form(request)
        values: dict[str, Any] = {name: form_text(form, name) for name in CONTACT_TEXT}
        values["verified"] = form.get("verified") == "on"
        contact_id = _item(request)

        def change(tx: WriteTx, customer_id: int, now: Any) -> None:
            _require_part(tx, "contacts", contact_id, customer_id, "contact")
            contacts.update_contact(tx, contact_id, values)

        return await self._change(request, msg("Contact saved."), "admin.contact_updated",
                                  change)

    async def edit_site(self, request: Request) -> Response:
        form = await self._form(request)
        values = {name: form_text(form, name) for name in SITE_TEXT}
        site_id = _item(request)

        def change(tx: WriteTx, customer_id: int, now: Any) -> None:
            _require_part(tx, "sites", site_id, customer_id, "site")
            sites.update_site(tx, site_id, values, now=now)

        return await self._change(request, msg("Site saved."), "admin.site_updated", change)

    async def add_equipment(self, request: Request) -> Response:
        form = await self._form(request)
        values: dict[str, Any] = {name: form_text(form, name) for name in EQUIPMENT_TEXT}
        values["site_id"] = _int(form_text(form, "site_id"))

        def add(tx: WriteTx, customer_id: int, now: Any) -> int:
            return equipment.add_equipment(tx, {**values, "customer_id": customer_id},
                                           now=now)

        return await self._change(request, msg("Equipment added."), "admin.equipment_created",
                                  add)

    async def add_contract(self, request: Request) -> Response:
        form = await self._form(request)
        values = contract_values(form)
        return await self._change(request, msg("Contract added."), "admin.contract_created",
                                  lambda tx, cid, now: contracts.add_contract(
                                      tx, cid, values, now=now))

    async def edit_contract(self, request: Request) -> Response:
        form = await self._form(request)
        values = contract_values(form)
        contract_id = _item(request)

        def change(tx: WriteTx, customer_id: int, now: Any) -> None:
            _require_part(tx, "contracts", contract_id, customer_id, "contract")
            contracts.update_contract(tx, customer_id, contract_id, values, now=now)

        return await self._change(request, msg("Contract saved."), "admin.contract_updated",
                                  change)

    async def merge(self, request: Request) -> Response:
        form = await self._form(request)
        into = _int(form_text(form, "into"))
        if into is None:
            return await self._card(request, _id(request), msg(
                "into: give the id of the customer to merge into"), 422)
        operator, source = await self.p.operator(request), _id(request)
        now = self.p.services.clock.now()
        try:
            await self.p.services.store.write(
                lambda tx: merge_customers(tx, source, into, now=now,
                                           owner=operator.owner_limit))
        except (InvalidRecord, Conflict) as exc:
            return await self._card(request, source, self.p.text(request, refusal_message(exc)),
                                    _status(exc))
        log.info("admin.customers_merged", customer_id=source, into=into,
                 operator=operator.email)
        return redirect(f"/customers/{into}",
                        msg("Customer {id} merged into this one.", id=source), request)

    async def _change(self, request: Request, done: Msg, event: str,
                      fn: Callable[[WriteTx, int, Any], Any]) -> Response:
        """Run one change of the card's customer; back to the card, with the message."""
        operator = await self.p.operator(request)
        customer_id, now = _id(request), self.p.services.clock.now()
        try:
            await self.p.services.store.write(lambda tx: fn(tx, customer_id, now))
        except (InvalidRecord, Conflict) as exc:
            return await self._card(
                request, customer_id, self.p.text(request, refusal_message(exc)), _status(exc))
        log.info(event, customer_id=customer_id, operator=operator.email)
        return redirect(f"/customers/{customer_id}", done, request)

    async def _card(self, request: Request, customer_id: int,
                    error: str | Msg | None = None, status: int = 200) -> Response:
        async with self.p.services.store.read() as conn:
            customer = await customers.get_customer(conn, customer_id)
            if customer is None:
                raise PageError(404, msg("Customer {id} does not exist.", id=customer_id))
            people = await contacts.list_contacts(conn, customer_id)
            places = await sites.list_sites(conn, customer_id)
            machines = (await equipment.find_equipment(conn, customer_id=customer_id,
                                                       limit=200))["items"]
            cases = await customer_interventions(conn, customer_id)
            deals = await contracts.list_contracts(conn, customer_id)
            plans = await customer_schedules(conn, customer_id)
        site_names = {s["id"]: s["name"] for s in places}
        serials = {m["id"]: m["serial"] for m in machines}
        return self.p.render(request, "customer.html.j2", status=status, c=customer,
                             contacts=people, sites=places, equipment=machines,
                             cases=cases, site_names=site_names, serials=serials,
                             contracts=deals, schedules=plans,
                             schedule_names={p["id"]: p["subject"] for p in plans},
                             low_hours=self.p.services.settings.contracts.low_hours_alert,
                             error=self.p.text(request, error) if error else None)

    async def _form(self, request: Request) -> FormData:
        await self.p.operator(request)
        # A contract's form ticks up to MAX_LINKS machines and as many schedules.
        async with request.form(max_files=0, max_fields=50 + 2 * MAX_LINKS,
                                max_part_size=MAX_FORM_BYTES) as form:
            check_csrf(request, form)
            return form


def _require_part(tx: WriteTx, table: str, item_id: int, customer_id: int,
                  what: str) -> None:
    """A form of one customer's card may change only that customer's rows."""
    # `table` is one of our constants, never input.
    row = tx.execute(f"SELECT customer_id FROM {table} WHERE id = ?",  # noqa: S608
                     (item_id,)).fetchone()
    if row is None or row[0] != customer_id:
        raise InvalidRecord(msg("{field}: {id} is not one of customer {customer}'s",
                                field=what, id=item_id, customer=customer_id))


def _item(request: Request) -> int:
    value = int(request.path_params["item"])
    if value > MAX_ID:
        raise PageError(404, msg("There is no such page."))
    return value


def _status(exc: Exception) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _id(request: Request) -> int:
    value = int(request.path_params["id"])
    if value > MAX_ID:
        raise PageError(404, msg("Customer {id} does not exist.", id=value))
    return value


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and int(value) <= MAX_ID else None
