"""Operators on the admin page (admins only; admin.permissions refuses the others):
the list, adding one with a role, a language and the own-customers limit, changing
those, retiring and bringing back, and setting a new password for someone who lost
theirs. The last active admin can be neither demoted nor retired."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin.api.base import MAX_ID
from nexusmail.admin.pages.base import PageError, Pages, check_csrf, form_text, redirect
from nexusmail.i18n import LANGUAGES, msg
from nexusmail.mail.addresses import check_address
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import operators
from nexusmail.tickets.cases import Conflict
from nexusmail.tickets.operator_admin import (
    OperatorChange,
    change_operator,
    operator_record,
    operator_records,
    set_operator_active,
)

log = structlog.get_logger(__name__)

BROWSER_LANGUAGE = ""  # the form's value for "as their browser asks"


def operator_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/operators", h.listing, methods=["GET"]),
        Route("/operators", h.add, methods=["POST"]),
        Route("/operators/{id:int}", h.card, methods=["GET"]),
        Route("/operators/{id:int}", h.save, methods=["POST"]),
        Route("/operators/{id:int}/active", h.set_active, methods=["POST"]),
        Route("/operators/{id:int}/password", h.password, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def listing(self, request: Request) -> Response:
        await self.p.operator(request)
        async with self.p.services.store.read() as conn:
            everyone = await operator_records(conn)
        return self.p.render(request, "operators.html.j2", operators=everyone,
                             roles=operators.ROLES, languages=LANGUAGES)

    async def add(self, request: Request) -> Response:
        admin = await self.p.operator(request)
        form = await _form(request)
        email = form_text(form, "email", 254).lower()
        try:
            check_address(email)
        except ValueError:
            raise PageError(422, msg("{address} is not an email address.",
                                     address=email)) from None
        role, language = _role(form), _language(form)
        password_hash = await _new_password_hash(form)
        now = self.p.services.clock.now()
        try:
            operator_id = await self.p.services.store.write(lambda tx: operators.add_operator(
                tx, email=email, name=form_text(form, "name", 200),
                password_hash=password_hash, now=now, language=language, role=role,
                own_customers_only=form.get("own_customers_only") == "on"))
        except Conflict:
            raise PageError(409, msg("An operator with address {address} exists already.",
                                     address=email)) from None
        log.info("admin.operator_added", added=email, role=role, operator=admin.email)
        return redirect(f"/operators/{operator_id}", msg("Operator added."), request)

    async def card(self, request: Request) -> Response:
        await self.p.operator(request)
        record = await self._record(request)
        return self.p.render(request, "operator.html.j2", o=record, roles=operators.ROLES,
                             languages=LANGUAGES)

    async def save(self, request: Request) -> Response:
        admin = await self.p.operator(request)
        record = await self._record(request)
        form = await _form(request)
        change = OperatorChange(
            name=form_text(form, "name", 200), role=_role(form), language=_language(form),
            own_customers_only=form.get("own_customers_only") == "on")
        now = self.p.services.clock.now()
        await self._write(lambda tx: change_operator(tx, record["email"], change, now=now))
        log.info("admin.operator_changed", changed=record["email"], role=change.role,
                 operator=admin.email)
        # An admin who made themself a dispatcher may no longer see this page.
        back = "/" if record["id"] == admin.id and change.role != "admin" else (
            f"/operators/{record['id']}")
        return redirect(back, msg("Details saved."), request)

    async def set_active(self, request: Request) -> Response:
        """Retire (no login, their sessions and tokens end) or bring back."""
        admin = await self.p.operator(request)
        record = await self._record(request)
        form = await _form(request)
        active = form_text(form, "active", 5) == "1"
        now = self.p.services.clock.now()
        await self._write(lambda tx: set_operator_active(
            tx, record["email"], active=active, now=now))
        log.info("admin.operator_active", changed=record["email"], active=active,
                 operator=admin.email)
        done = msg("Operator enabled.") if active else msg("Operator disabled.")
        if record["id"] == admin.id and not active:
            request.session.clear()
            return redirect("/login", done, request)
        return redirect(f"/operators/{record['id']}", done, request)

    async def password(self, request: Request) -> Response:
        """A new password set by an admin; every session of theirs ends."""
        admin = await self.p.operator(request)
        record = await self._record(request)
        password_hash = await _new_password_hash(await _form(request))
        now = self.p.services.clock.now()
        await self._write(lambda tx: operators.set_password(
            tx, email=record["email"], password_hash=password_hash, now=now))
        log.info("admin.operator_password_set", changed=record["email"],
                 operator=admin.email)
        if record["id"] == admin.id:
            request.session.clear()
            return redirect("/login", msg("Password changed: log in with the new one."),
                            request)
        return redirect(f"/operators/{record['id']}",
                        msg("New password set: their open sessions have ended."), request)

    async def _record(self, request: Request) -> dict[str, Any]:
        operator_id = int(request.path_params["id"])
        record = None
        if operator_id <= MAX_ID:
            async with self.p.services.store.read() as conn:
                record = await operator_record(conn, operator_id=operator_id)
        if record is None:
            raise PageError(404, msg("Operator {id} does not exist.", id=operator_id))
        return record

    async def _write(self, apply: Callable[[WriteTx], object]) -> None:
        """Run `apply(tx)` in the writer; the last-admin refusal becomes a page the
        admin can read."""
        try:
            await self.p.services.store.write(apply)
        except Conflict:
            raise PageError(409, msg(
                "This is the last active admin: make another operator admin first.")) from None


async def _form(request: Request) -> FormData:
    async with request.form(max_files=0, max_fields=20) as form:
        check_csrf(request, form)
        return form


def _role(form: FormData) -> str:
    role = form_text(form, "role", 20)
    if role not in operators.ROLES:
        raise PageError(422, msg("Choose one of the roles listed."))
    return role


def _language(form: FormData) -> str | None:
    language = form_text(form, "language", 5)
    if language != BROWSER_LANGUAGE and language not in LANGUAGES:
        raise PageError(422, msg("Choose one of the languages listed."))
    return language or None


async def _new_password_hash(form: FormData) -> str:
    new = form_text(form, "password", operators.MAX_PASSWORD_CHARS + 1)
    if new != form_text(form, "again", operators.MAX_PASSWORD_CHARS + 1):
        raise PageError(422, msg("The two new passwords differ."))
    try:
        operators.check_password_rules(new)
    except ValueError:
        raise PageError(422, msg("The new password needs at least {count} characters.",
                                 count=operators.MIN_PASSWORD_CHARS)) from None
    return await asyncio.to_thread(operators.hash_password, new)
