"""Senders muted by the loop guard, on the admin page: listed above the interventions,
each with an "Unmute" button (`POST /muted-peers/unmute`, CSRF-checked like every form).

Unmuting lets the sender's next mail open a case again, its count starting afresh;
the mails held meanwhile stay in `nexusmail quarantine list` until retried.
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import msg
from nexusmail.tickets.peer_guard import MuteScope, unmute

log = structlog.get_logger(__name__)

MAX_PEER_CHARS = 320  # RFC 5321 path limits: 64 local + 255 domain + "@"


def muted_peer_routes(pages: Pages) -> list[Route]:
    async def lift(request: Request) -> Response:
        operator = await pages.operator(request)
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            scope = form_text(form, "scope", 20)
            peer = form_text(form, "peer", MAX_PEER_CHARS)
        if scope not in {s.value for s in MuteScope} or not peer:
            raise PageError(422, msg("Choose a muted sender to unmute."))
        now = pages.services.clock.now()
        lifted = await pages.services.store.write(lambda tx: unmute(
            tx, MuteScope(scope), peer, operator=f"operator:{operator.email}", now=now))
        log.info("admin.peer_unmuted", peer=peer, scope=scope, operator=operator.email,
                 lifted=lifted)
        if lifted:
            flash = msg("{peer} is unmuted; its held mails: nexusmail quarantine retry.",
                        peer=peer)
        else:
            flash = msg("{peer} was not muted any more.", peer=peer)
        return redirect("/", flash, request)

    return [Route("/muted-peers/unmute", lift, methods=["POST"])]
