"""The thread page's form for what a case is about in the archive: the contact, site
and machine of its customer, its request type and the channel it came by.

The same rules as `PATCH /api/v1/interventions/{number}` (tickets.case_edits): each
link must belong to the case's customer, a contact address it does not have yet
becomes its new contact, a machine brings its site when no site is chosen, and the
change is written on the thread with the operator's name.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import message_of, msg
from nexusmail.mail.addresses import check_address
from nexusmail.records.fields import REQUEST_CHANNELS
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.case_edits import EditRefused, edit_intervention, resolve_links
from nexusmail.tickets.cases import NotFound

log = structlog.get_logger(__name__)


def case_link_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/interventions/{number:int}/links", h.save, methods=["POST"])]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def save(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        number = int(request.path_params["number"])
        if number > MAX_ID:
            raise PageError(404, msg("Intervention #{number} does not exist.", number=number))
        async with request.form(max_files=0, max_fields=20) as form:
            check_csrf(request, form)
            contact = form_text(form, "contact_email", 254)
            site = form_text(form, "site_id", 20)
            serial = form_text(form, "equipment_serial", 100)
            request_type = form_text(form, "request_type", 100)
            channel = form_text(form, "channel", 20)
        if channel and channel not in REQUEST_CHANNELS:
            raise PageError(422, msg("{field}: is not one of the choices", field="channel"))
        if contact:
            try:
                contact = check_address(contact)
            except ValueError:
                raise PageError(422, msg("{field}: is not an email address",
                                         field="contact_email")) from None
        site_id = int(site) if site.isdigit() and int(site) <= MAX_ID else None
        # A machine chosen without a site brings its own site.
        given = {"contact_email", "equipment_serial"} | (
            {"site_id"} if site_id is not None or not serial else set())
        now, author = self.p.services.clock.now(), f"operator:{operator.email}"

        def change(tx: WriteTx) -> dict[str, list[Any]]:
            row = tx.execute("SELECT customer_id FROM interventions WHERE number = ?",
                             (number,)).fetchone()
            if row is None:
                raise NotFound(msg("intervention {number} does not exist", number=number))
            changes: dict[str, Any] = {"request_type": request_type,
                                       "channel": channel or None}
            changes.update(resolve_links(
                tx, row["customer_id"], now=now, contact_email=contact or None,
                site_id=site_id, equipment_serial=serial or None, given=frozenset(given)))
            return edit_intervention(tx, number, changes, now=now, author=author)

        try:
            changed = await self.p.services.store.write(change)
        except EditRefused as exc:
            raise PageError(422, message_of(exc)) from None
        log.info("admin.intervention_edited", intervention=number, fields=sorted(changed),
                 operator=operator.email)
        return redirect(f"/interventions/{number}", msg("Links saved."), request)
