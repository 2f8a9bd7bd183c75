"""Login and logout of operators.

A login is refused with 429 while the client address, or the account (unless the
browser is one its operator logged in from before), has too many recent failures
(auth.LoginLimiter), before any password is checked; the password check itself
(argon2, tens of milliseconds of CPU) runs in a thread, and a failure's answer is
slowed down. A successful login opens a session in the store; logout ends it there.
"""

from __future__ import annotations

import asyncio
from functools import partial

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nexusmail.admin import auth
from nexusmail.admin.pages.base import Pages, check_csrf, form_text, redirect, safe_next
from nexusmail.i18n import msg
from nexusmail.tickets.operator_sessions import end_session, open_session
from nexusmail.tickets.operators import find_operator, verify_password

log = structlog.get_logger(__name__)

MAX_LOGIN_FORM_BYTES = 16 * 1024


def login_routes(pages: Pages) -> list[Route]:
    h = _Handlers(pages)
    return [
        Route("/login", h.login_form, methods=["GET"]),
        Route("/login", h.login, methods=["POST"]),
        Route("/logout", h.logout, methods=["POST"]),
    ]


class _Handlers:
    def __init__(self, pages: Pages) -> None:
        self.p = pages

    async def login_form(self, request: Request) -> Response:
        return self.p.render(request, "login.html.j2",
                             next=safe_next(request.query_params.get("next")), email="")

    async def login(self, request: Request) -> Response:
        async with request.form(max_files=0, max_fields=5,
                                max_part_size=MAX_LOGIN_FORM_BYTES) as form:
            check_csrf(request, form)
            email = form_text(form, "email", 254).lower()
            password = form.get("password")
            target = safe_next(form_text(form, "next", 2000))
        # The proxy's address unless it is one of [web] trusted_proxies (uvicorn then
        # puts the forwarded client address here).
        ip = request.client.host if request.client else "unknown"
        known = self.p.known_devices.is_known(request.cookies.get(auth.DEVICE_COOKIE), email)
        wait = self.p.limiter.retry_after_s(ip, email, known_device=known)
        if wait:
            log.warning("admin.login_rate_limited", ip=ip, account=email, retry_after_s=wait)
            response = self.p.render(
                request, "login.html.j2", status=429, next=target, email=email,
                error=self.p.text(request, msg(
                    "Too many failed logins. Try again in {seconds} seconds.", seconds=wait)))
            response.headers["Retry-After"] = str(wait)
            return response
        async with self.p.services.store.read() as conn:
            operator = await find_operator(conn, email)
        ok = isinstance(password, str) and await asyncio.to_thread(
            verify_password, operator, password)
        if not ok or operator is None:
            self.p.limiter.failed(ip, email)
            log.info("admin.login_failed", ip=ip, account=email, known_device=known)
            await asyncio.sleep(self.p.limiter.failure_delay_s(ip, email))
            return self.p.render(
                request, "login.html.j2", status=401, next=target, email=email,
                error=self.p.text(request, msg("Wrong address or password.")))
        self.p.limiter.succeeded(email)
        web = self.p.services.settings.web
        session_id = await self.p.services.store.write(partial(
            open_session, operator_id=operator.id, now=self.p.services.clock.now(),
            max_age_s=web.session_max_age_s, ip=ip))
        # A fresh session (and CSRF token) at login: a session id planted before the
        # login must not become the operator's.
        request.session.clear()
        request.session.update({"sid": session_id, "csrf": auth.new_csrf_token()})
        log.info("admin.login", operator=operator.email, ip=ip)
        done = redirect(target)
        done.set_cookie(auth.DEVICE_COOKIE, self.p.known_devices.cookie_for(email),
                            max_age=auth.DEVICE_MAX_AGE_S, path="/login", httponly=True,
                            samesite="strict", secure=web.secure_cookies)
        return done

    async def logout(self, request: Request) -> Response:
        async with request.form(max_files=0, max_fields=5,
                                max_part_size=MAX_LOGIN_FORM_BYTES) as form:
            check_csrf(request, form)
        session_id = request.session.get("sid")
        if isinstance(session_id, str) and session_id:
            # Ended in the store, not only in this browser: a copy of the cookie taken
            # earlier stops working too.
            await self.p.services.store.write(partial(end_session, session_id=session_id))
        request.session.clear()
        return redirect("/login")
