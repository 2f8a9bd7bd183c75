"""The interventions list, the quick entry of a phone request, the employees list.

The list is at `/`: filters and full-text search in the query string (so a filtered
view can be bookmarked or sent to a colleague), pages by intervention number
(tickets.search explains why not OFFSET).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import structlog
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.assignments import signing_keys
from nexusmail.admin.api.base import MAX_ID, ApiError
from nexusmail.admin.api.models import InterventionIn
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.admin.pages.due_times import next_deadline
from nexusmail.admin.pages.form_errors import validation_message
from nexusmail.i18n import Msg, message_of, msg
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import queries, search, visibility
from nexusmail.tickets.attention import Attention
from nexusmail.tickets.due_filter import Due, due_filter
from nexusmail.tickets.entry import EntryRefused, open_with_assignees
from nexusmail.tickets.list_counts import list_counts
from nexusmail.tickets.models import Priority, Source, Status
from nexusmail.tickets.new_requests import OpenRequest
from nexusmail.tickets.operator_reads import is_new, read_times
from nexusmail.tickets.peer_guard import active_mutes

log = structlog.get_logger(__name__)

MAX_QUERY_CHARS = 200
MAX_ENTRY_FORM_BYTES = 2 * 1024 * 1024
_FILTER_KEYS = ("status", "employee", "customer", "equipment", "type", "attention", "due",
                "q", "sort", "unread")


def list_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/", h.interventions, methods=["GET"]),
        Route("/interventions/new", h.new_form, methods=["GET"]),
        Route("/interventions/new", h.create, methods=["POST"]),
        Route("/employees", h.employees, methods=["GET"]),
    ]


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and int(value) <= MAX_ID else None


def read_filter(params: Any, operator_id: int | None = None,
                ) -> tuple[search.ListFilter, dict[str, str]]:
    """The filter a query string asks for, and every filter field's text as typed
    (for the form). Values that make no sense are ignored: a stale bookmark should
    still show a list. `unread=1` asks for `operator_id`'s cases with new mail."""
    status = params.get("status", "")
    attention = params.get("attention", "")
    chosen = {key: params.get(key, "").strip()[:MAX_QUERY_CHARS] for key in _FILTER_KEYS}
    flt = search.ListFilter(
        status=status if status in {s.value for s in Status} else None,
        employee_id=_number(params.get("employee")),
        customer=chosen["customer"],
        equipment=chosen["equipment"],
        request_type=chosen["type"],
        attention=Attention(attention) if attention in {a.value for a in Attention} else None,
        text=chosen["q"],
        new_mail_for=operator_id if chosen["unread"] == "1" else None,
    )
    return flt, chosen


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def interventions(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        params = request.query_params
        flt, chosen = read_filter(params, operator.id)
        flt = replace(flt, owner=operator.owner_limit)
        order = chosen["sort"] if chosen["sort"] in search.ORDERS else search.ORDERS[0]
        now = self.p.services.clock.now()
        if chosen["due"] in {d.value for d in Due}:
            flt = replace(flt, due=due_filter(Due(chosen["due"]), now,
                                              self.p.services.settings.calendar.timezone))
        async with self.p.services.store.read() as conn:
            page = await search.list_page(conn, flt, before=params.get("before"),
                                          after=params.get("after"), order=order)
            employees = await queries.list_employees(conn)
            types = await search.request_types(conn)
            muted = await active_mutes(conn, now)
            seen = await read_times(conn, operator.id, [row["number"] for row in page.rows])
            counts = await list_counts(conn, operator.id, operator.owner_limit)
        new = {row["number"] for row in page.rows
               if is_new(row["last_inbound_at"], seen.get(row["number"]))}

        def link(**extra: str) -> str:
            return "/?" + urlencode({**{k: v for k, v in chosen.items() if v}, **extra})

        return self.p.render(
            request, "list.html.j2", page=page, chosen=chosen, employees=employees,
            types=types, attentions=[a.value for a in Attention], muted=muted,
            statuses=[s.value for s in Status], orders=search.ORDERS, order=order, new=new,
            counts=counts,
            due_choices=[d.value for d in Due],
            dues={row["number"]: next_deadline(
                status=row["status"], response_due=row["response_due"],
                resolution_due=row["resolution_due"],
                assignment_statuses=[a["status"] for a in row["assignees"]], now=now)
                for row in page.rows},
            older_url=link(before=page.older) if page.older else None,
            newer_url=link(after=page.newer) if page.newer else None,
        )

    async def new_form(self, request: Request) -> Response:
        await self.p.operator(request)
        return await self._entry_form(request, {}, None)

    async def create(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        async with request.form(max_files=0, max_fields=100,
                                max_part_size=MAX_ENTRY_FORM_BYTES) as form:
            check_csrf(request, form)
            values = {name: form_text(form, name, 1_000_000) for name in (
                "customer_email", "customer_name", "subject", "description", "request_type",
                "priority", "desired_from", "desired_to")}
            assignees = [a for a in form.getlist("assignees") if isinstance(a, str)]
        try:
            body = InterventionIn.model_validate(
                {**{k: v for k, v in values.items() if v}, "assignees": assignees},
                context={"limits": self.p.services.settings.limits})
        except ValidationError as exc:
            return await self._entry_form(request, values, validation_message(exc),
                                          assignees)
        entry = OpenRequest(
            customer_email=body.customer_email, customer_name=body.customer_name,
            subject=body.subject, description=body.description, source=Source.API,
            request_type=body.request_type, priority=body.priority,
            desired_from=body.desired_from, desired_to=body.desired_to,
            author=f"operator:{operator.email}",
        )
        now, settings = self.p.services.clock.now(), self.p.services.settings
        try:
            keys = signing_keys(self.p.services) if body.assignees else ()
            number = await self.p.services.store.write(lambda tx: _opened_for(
                tx, operator.owner_limit, now, open_with_assignees(
                    tx, entry, body.assignees, now=now, settings=settings, reply_keys=keys,
                    assigned_by=f"operator:{operator.email}")))
        except (ApiError, EntryRefused) as exc:
            return await self._entry_form(request, values, message_of(exc), assignees)
        except visibility.NotTheirs as exc:
            raise PageError(404, msg("Customer {id} does not exist.",
                                     id=exc.customer_id)) from None
        self.p.services.on_outbox()
        log.info("admin.intervention_created", intervention=number, operator=operator.email,
                 customer=body.customer_email, assignees=body.assignees)
        return redirect(f"/interventions/{number}",
                        msg("Intervention #{number} opened.", number=number), request)

    async def _entry_form(self, request: Request, values: dict[str, str],
                          error: str | Msg | None, assignees: list[str] | None = None
                          ) -> Response:
        async with self.p.services.store.read() as conn:
            employees = [e for e in await queries.list_employees(conn) if e["active"]]
        return self.p.render(
            request, "new.html.j2", status=422 if error else 200, values=values,
            error=self.p.text(request, error) if error else None,
            employees=employees, assignees=set(assignees or []),
            priorities=[p.value for p in Priority])

    async def employees(self, request: Request) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            employees = await queries.list_employees(conn)
        return self.p.render(request, "employees.html.j2", employees=employees)


def _opened_for(tx: WriteTx, limit: str | None, now: datetime, number: int) -> int:
    """`number`, once checked for an operator limited to their own customers (a new
    customer becomes theirs; anyone else's undoes the whole entry)."""
    if limit is not None:
        visibility.claim_new_case(tx, number, limit, now=now)
    return number
