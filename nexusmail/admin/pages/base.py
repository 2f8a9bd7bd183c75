"""What every admin page route module shares: templates, the operator, CSRF, headers.

Kept apart from the route modules (pages_login, pages_list, pages_thread) so each of
them imports it and none imports another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import jinja2
from babel.numbers import format_decimal
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nexusmail.admin import auth
from nexusmail.admin.api.base import ApiServices
from nexusmail.admin.permissions import refusal
from nexusmail.i18n import LANGUAGES, Formats, Msg, msg, negotiate, translations
from nexusmail.records.type_names import TypeNames, load_type_names
from nexusmail.tickets.activities import format_hours
from nexusmail.tickets.operator_sessions import session_operator
from nexusmail.tickets.operators import Operator

# The page itself: nothing inline, nothing from elsewhere, no scripts at all (the
# pages work without JavaScript). Mail HTML is shown in sandboxed srcdoc frames, which
# inherit this policy on top of their own.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self';"
    " frame-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Inside a mail's frame: its own inline styles may lay it out, nothing may load or run.
MAIL_FRAME_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:"


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""


class CsrfRejected(Exception):
    """A POST without the session's CSRF token."""


class PageError(Exception):
    """A request the page refuses, with the status and a message for the operator."""

    def __init__(self, status: int, message: str | Msg) -> None:
        super().__init__(str(message))
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Pages:
    """What the page handlers share: the daemon's services and the loaded templates."""

    services: ApiServices
    templates: Mapping[str, jinja2.Environment]   # one per language, gettext installed
    limiter: auth.LoginLimiter
    known_devices: auth.KnownDevices

    def render(self, request: Request, name: str, status: int = 200, **context: Any
               ) -> HTMLResponse:
        session = request.scope.get("session", {})
        operator = request.scope.get("nexusmail.operator")
        language = self.language(request)
        flash = session.pop("flash", None)
        names = request.scope.get("nexusmail.type_names") or TypeNames([])
        context.setdefault("type_name", lambda value: names.shown(value, language))
        html = self.templates[language].get_template(name).render(
            operator=operator, csrf=auth.csrf_token(session) if "session" in request.scope
            else "", flash=shown(flash, language) if flash else None,
            request_path=request.url.path, language=language,
            company=self.services.settings.mail.company_name, **context)
        return HTMLResponse(html, status_code=status)

    async def operator(self, request: Request) -> Operator:
        """The logged-in operator, or LoginRequired (expired, logged out, deactivated,
        new password): the session the cookie names must still be in the store."""
        session = request.session
        session_id = session.get("sid")
        if not isinstance(session_id, str) or not session_id:
            raise LoginRequired
        async with self.services.store.read() as conn:
            operator = await session_operator(conn, session_id,
                                              now=self.services.clock.now())
            refused = None if operator is None else await refusal(
                conn, operator, request.method, request.url.path, request.path_params)
            # For `type_name` in every template: one read of a list of a few rows.
            request.scope["nexusmail.type_names"] = await load_type_names(conn)
        if operator is None:
            session.clear()
            raise LoginRequired
        request.scope["nexusmail.operator"] = operator
        if refused == 403:
            raise PageError(403, msg("Your role does not allow this."))
        if refused == 404:
            raise PageError(404, msg("There is no such page."))
        return operator

    def language(self, request: Request) -> str:
        """The operator's chosen language, else their browser's, else the default."""
        operator = request.scope.get("nexusmail.operator")
        if operator is not None and operator.language in LANGUAGES:
            return str(operator.language)
        return (negotiate(request.headers.get("accept-language", ""))
                or self.services.settings.web.default_language)

    def text(self, request: Request, message: str | Msg) -> str:
        """`message` in the language the page speaks to this request."""
        return shown(message, self.language(request))


def check_csrf(request: Request, form: FormData) -> None:
    if not auth.csrf_matches(request.session, form.get(auth.CSRF_FIELD)):
        raise CsrfRejected


def redirect(path: str, flash: str | Msg | None = None, request: Request | None = None
             ) -> RedirectResponse:
    """303 See Other: after a POST the browser GETs the page (no resubmit on reload).
    The flash is kept untranslated (text and values) and translated when shown."""
    if flash and request is not None:
        request.session["flash"] = (
            {"text": flash.text, "params": flash.params} if isinstance(flash, Msg) else flash)
    return RedirectResponse(path, status_code=303)


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def safe_next(value: str | None) -> str:
    """Only a path on this site: `//evil.example` or `https://...` would leave it."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def form_text(form: FormData, name: str, max_chars: int = 10_000) -> str:
    value = form.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PageError(422, msg("{field}: should be text, not a file", field=name))
    value = value.strip()
    if len(value) > max_chars:
        raise PageError(422, msg("{field}: is longer than {limit} characters",
                                 field=name, limit=max_chars))
    return value


def make_filters(timezone: str, language: str) -> dict[str, Any]:
    formats = Formats(language, ZoneInfo(timezone))
    return {"when": formats.moment, "day": formats.day, "size": formats.size,
            "urlquote": lambda v: quote(str(v), safe=""),
            "number": lambda n: format_decimal(n, locale=language),
            "hours": lambda minutes: format_hours(minutes, language)}


class SecurityHeaders:
    """Adds the page's safety headers to every response that did not set its own."""

    HEADERS = (
        (b"content-security-policy", PAGE_CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.HEADERS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_page(pages: Pages, request: Request, status: int, message: str | Msg) -> Response:
    return pages.render(request, "error.html.j2", status=status, status_code=status,
                        message=pages.text(request, message))


def shown(message: object, language: str) -> str:
    """A message (a Msg, its stored form in the session, or plain text) in `language`."""
    if isinstance(message, Msg):
        return message.translated(language)
    if isinstance(message, dict):
        params = message.get("params")
        return Msg(str(message.get("text", "")),
                   params if isinstance(params, dict) else {}).translated(language)
    return translations(language).gettext(str(message))
