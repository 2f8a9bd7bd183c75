"""Senders muted by the loop guard, on the admin page: listed above the interventions,
each with an "Unmute" button (`POST /muted-peers/unmute`, CSRF-checked like every form)
and, while it has held mails, "Unmute and let held mails in" (`POST /muted-peers/let-in`).

Unmuting lets the sender's next mail open a case again, its count starting afresh;
the mails held meanwhile stay in `nexusmail quarantine list` until retried, which the
second button does at once: each held mail of that address or domain goes through
ingest again (`ingest.retry`, as the CLI's retry), one after the other, at most
MAX_LET_IN per click (the flash says how many remain).
"""

from __future__ import annotations

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import msg
from nexusmail.ingest.retry import RetryState, retry_inbound
from nexusmail.mail.peers import peer_of
from nexusmail.tickets.models import Outcome
from nexusmail.tickets.peer_guard import MuteScope, unmute

log = structlog.get_logger(__name__)

MAX_PEER_CHARS = 320  # RFC 5321 path limits: 64 local + 255 domain + "@"
# Held mails let in per click: a loop guard holds few, but one click must stay short.
MAX_LET_IN = 500


def muted_peer_routes(pages: Pages) -> list[Route]:
    async def unmute_from_form(request: Request, *, needs_ingest: bool = False
                               ) -> tuple[MuteScope, str, bool]:
        """The sender the form names, unmuted: (scope, peer, whether a mute was lifted)."""
        operator = await pages.operator(request)
        async with request.form(max_files=0, max_fields=5) as form:
            check_csrf(request, form)
            scope = form_text(form, "scope", 20)
            peer = form_text(form, "peer", MAX_PEER_CHARS)
        if (scope not in {s.value for s in MuteScope} or not peer
                or (needs_ingest and pages.services.ingest is None)):
            raise PageError(422, msg("Choose a muted sender to unmute."))
        now = pages.services.clock.now()
        lifted = await pages.services.store.write(lambda tx: unmute(
            tx, MuteScope(scope), peer, operator=f"operator:{operator.email}", now=now))
        log.info("admin.peer_unmuted", peer=peer, scope=scope, operator=operator.email,
                 lifted=lifted)
        return MuteScope(scope), peer, lifted

    async def lift(request: Request) -> Response:
        _, peer, lifted = await unmute_from_form(request)
        if lifted:
            flash = msg("{peer} is unmuted; its held mails: nexusmail quarantine retry.",
                        peer=peer)
        else:
            flash = msg("{peer} was not muted any more.", peer=peer)
        return redirect("/", flash, request)

    async def lift_and_let_in(request: Request) -> Response:
        scope, peer, _ = await unmute_from_form(request, needs_ingest=True)
        ingest = pages.services.ingest
        assert ingest is not None  # checked with the form
        held = await _held_of(pages, scope, peer)
        let_in = 0
        for inbound_id in held[:MAX_LET_IN]:
            done = await retry_inbound(ingest, pages.services.store, inbound_id)
            let_in += done.state is RetryState.DONE
        pages.services.on_outbox()
        log.info("admin.peer_let_in", peer=peer, scope=scope, held=len(held), let_in=let_in)
        flash = msg("{peer} is unmuted; {count} held mails let in.", peer=peer, count=let_in)
        if len(held) > MAX_LET_IN:
            flash = msg("{peer} is unmuted; {count} held mails let in, {left} still held:"
                        " click again.", peer=peer, count=let_in, left=len(held) - MAX_LET_IN)
        return redirect("/", flash, request)

    return [Route("/muted-peers/unmute", lift, methods=["POST"]),
            Route("/muted-peers/let-in", lift_and_let_in, methods=["POST"])]


async def _held_of(pages: Pages, scope: MuteScope, peer: str) -> list[int]:
    """The ids of the held mails whose sender counts as `peer` (address or domain), oldest
    first: the guard's own reading of each sender (`peer_of`), not a LIKE on the text."""
    support = pages.services.settings.mail.support_addresses
    async with pages.services.store.read() as conn:
        rows = await conn.execute_fetchall(
            "SELECT id, COALESCE(NULLIF(sender, ''), envelope_from) FROM inbound"
            " WHERE outcome = ? ORDER BY id", (Outcome.HELD,))
    wanted = []
    for row in rows:
        counted = peer_of(row[1] or "", support)
        if (counted.domain if scope is MuteScope.DOMAIN else counted.address) == peer:
            wanted.append(int(row[0]))
    return wanted
