"""The operator's own settings: the language the pages speak to them, their password."""

from __future__ import annotations

import asyncio

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import LANGUAGES, msg
from nexusmail.tickets.operators import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    check_password_rules,
    find_operator,
    hash_password,
    set_language,
    set_password,
    verify_password,
)

log = structlog.get_logger(__name__)

BROWSER_LANGUAGE = ""  # the form's value for "as my browser asks"


def settings_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/settings", h.show, methods=["GET"]),
            Route("/settings", h.save, methods=["POST"]),
            Route("/settings/password", h.password, methods=["POST"])]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def show(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        return self.p.render(request, "settings.html.j2", chosen=operator.language or "",
                             languages=LANGUAGES)

    async def save(self, request: Request) -> Response:
        operator = await self.p.operator(request)
        async with request.form(max_fields=5, max_files=0) as form:
            check_csrf(request, form)
            language = form_text(form, "language", 10)
        if language != BROWSER_LANGUAGE and language not in LANGUAGES:
            raise PageError(422, msg("Choose one of the languages listed."))
        services = self.p.services
        now = services.clock.now()
        await services.store.write(lambda tx: set_language(
            tx, operator_id=operator.id, language=language or None, now=now))
        log.info("admin.settings_saved", operator=operator.email, language=language or None)
        return redirect("/settings", msg("Settings saved."), request)

    async def password(self, request: Request) -> Response:
        """A new password for the operator themselves: the current one first; every
        session then ends (a stolen cookie's too), so they log in again."""
        operator = await self.p.operator(request)
        async with request.form(max_fields=5, max_files=0) as form:
            check_csrf(request, form)
            current, new, again = (form_text(form, name, MAX_PASSWORD_CHARS + 1)
                                   for name in ("current", "new", "again"))
        async with self.p.services.store.read() as conn:
            stored = await find_operator(conn, operator.email)
        if not await asyncio.to_thread(verify_password, stored, current):
            raise PageError(422, msg("The current password is wrong."))
        if new != again:
            raise PageError(422, msg("The two new passwords differ."))
        try:
            check_password_rules(new)
        except ValueError:
            raise PageError(422, msg("The new password needs at least {count} characters.",
                                     count=MIN_PASSWORD_CHARS)) from None
        password_hash = await asyncio.to_thread(hash_password, new)
        now = self.p.services.clock.now()
        await self.p.services.store.write(lambda tx: set_password(
            tx, email=operator.email, password_hash=password_hash, now=now))
        log.info("admin.password_changed", operator=operator.email)
        request.session.clear()
        return redirect("/login", msg("Password changed: log in with the new one."), request)
