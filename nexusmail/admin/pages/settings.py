"""The operator's own settings: the language the pages speak to them."""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import LANGUAGES, msg
from nexusmail.tickets.operators import set_language

log = structlog.get_logger(__name__)

BROWSER_LANGUAGE = ""  # the form's value for "as my browser asks"


def settings_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [Route("/settings", h.show, methods=["GET"]),
            Route("/settings", h.save, methods=["POST"])]


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
