"""API tokens on the admin page (admins only; admin.permissions refuses the others):
the list, making one (for an operator, with their role and visibility, or with full
access) whose secret is shown on the answer to the form and never again, revoking."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin import tokens
from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import msg
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.operator_admin import operator_records

log = structlog.get_logger(__name__)

FULL_ACCESS = ""  # the form's value for "no operator: full access"
MAX_TOKEN_NAME_CHARS = 100


def token_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/tokens", h.listing, methods=["GET"]),
            Route("/tokens", h.create, methods=["POST"]),
            Route("/tokens/{id:int}/revoke", h.revoke, methods=["POST"])]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def listing(self, request: Request, *, secret: str = "", made: str = ""
                      ) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            every_token = await tokens.list_tokens(conn)
            active = [o for o in await operator_records(conn) if o["active"]]
        # The secret travels only in this answer (no-store), never in the session
        # cookie as a flash would.
        return self.p.render(request, "tokens.html.j2", tokens=every_token,
                             operators=active, secret=secret, made=made)

    async def create(self, request: Request) -> Response:
        admin = await self.p.operator(request)
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            name = form_text(form, "name", MAX_TOKEN_NAME_CHARS)
            operator = form_text(form, "operator", 254) or None
        if not name:
            raise PageError(422, msg("A token needs a name."))
        now = self.p.services.clock.now()
        try:
            secret = await self.p.services.store.write(
                lambda tx: tokens.create_token(tx, name, now, operator=operator))
        except NotFound:
            raise PageError(422, msg("{address} is no active operator.",
                                     address=operator or "")) from None
        log.info("admin.token_created", name=name, acts_as=operator, operator=admin.email)
        return await self.listing(request, secret=secret, made=name)

    async def revoke(self, request: Request) -> Response:
        admin = await self.p.operator(request)
        token_id = int(request.path_params["id"])
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
        if token_id > MAX_ID:
            raise PageError(404, msg("Token {id} does not exist.", id=token_id))
        now = self.p.services.clock.now()
        try:
            await self.p.services.store.write(
                lambda tx: tokens.revoke_token(tx, token_id, now))
        except NotFound:
            raise PageError(404, msg("Token {id} does not exist.", id=token_id)) from None
        except Conflict:
            raise PageError(409, msg("Token {id} is already revoked.", id=token_id)) from None
        log.info("admin.token_revoked", token_id=token_id, operator=admin.email)
        return redirect("/tokens", msg("Token revoked: it no longer works."), request)
