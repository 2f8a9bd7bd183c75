"""The operators' admin page: server-rendered, no JavaScript, phone-readable.

`page_routes(services)` gives the daemon one `Mount("/")` placed after the JSON API's:
the pages are their own small Starlette app, so the session cookie and the security
headers apply to them and the API stays exactly as it was.

Routes (all but /login and the stylesheet need a logged-in operator):
- `GET /login`, `POST /login`, `POST /logout`                      pages_login
- `GET /` list with filters and search; `GET|POST /interventions/new` quick entry of a
  phone request; `GET /employees`                                   pages_list
- `GET /interventions/{n}` thread; `POST .../assign|notes|close|reopen`;
  `GET /attachments/{id}[/preview]`, `GET /messages/{id}/raw`       pages_thread
- `GET /schedules`, `GET /schedules/{id}` with the next dates     pages_schedules
- `POST /schedules/{id}` edits one, its rule included           pages.schedule_edit
- `GET /timesheets?month=YYYY-MM`, `GET /timesheets.csv?month=`   pages.timesheets
- `POST /interventions/{n}/activities`, `POST /activities/{id}/hours` pages.activity_forms
- `GET|POST /customers`, `GET|POST /customers/{id}` (card, edit), `POST
  /customers/{id}/contacts|sites|equipment|merge`                  pages.customers
- `GET|POST /equipment/{id}` (card, history, edit); `GET|POST /request-types`
                                                                    pages.installed_base
- `GET|POST /settings` the operator's own language                  pages_settings
- `POST /employees`, `GET|POST /employees/{id}`, `POST .../absences[/remove]`
                                                                    pages.employees
- `POST /muted-peers/unmute` lifts a loop-guard mute (listed on `/`) muted_peers
- `GET|POST /operators`, `GET|POST /operators/{id}`, `POST .../active|password`;
  `GET|POST /tokens`, `POST /tokens/{id}/revoke` (admins only)     pages.operators,
                                                                    pages.api_tokens
"""

from __future__ import annotations

import asyncio
from importlib import resources

import jinja2
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nexusmail.admin import auth
from nexusmail.admin.api.base import ApiError, ApiServices
from nexusmail.admin.pages.activity_forms import activity_form_routes
from nexusmail.admin.pages.api_tokens import token_routes
from nexusmail.admin.pages.base import (
    CsrfRejected,
    LoginRequired,
    PageError,
    Pages,
    SecurityHeaders,
    error_page,
    login_redirect,
    make_filters,
)
from nexusmail.admin.pages.case_links import case_link_routes
from nexusmail.admin.pages.customers import customer_routes
from nexusmail.admin.pages.employees import employee_routes
from nexusmail.admin.pages.installed_base import installed_base_routes
from nexusmail.admin.pages.listing import list_routes
from nexusmail.admin.pages.login import login_routes
from nexusmail.admin.pages.muted_peers import muted_peer_routes
from nexusmail.admin.pages.operators import operator_routes
from nexusmail.admin.pages.schedule_edit import schedule_edit_routes
from nexusmail.admin.pages.schedules import schedule_routes
from nexusmail.admin.pages.sequences import sequence_page_routes
from nexusmail.admin.pages.settings import settings_routes
from nexusmail.admin.pages.teams import team_page_routes
from nexusmail.admin.pages.thread import thread_routes
from nexusmail.admin.pages.timesheets import timesheet_routes
from nexusmail.admin.secret_file import load_or_create_secret
from nexusmail.blobs.store import BlobUnavailable
from nexusmail.i18n import LABELS, LANGUAGE_NAMES, LANGUAGES, message_of, msg, translations
from nexusmail.paths import session_key_path
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)

STYLESHEET = "admin.css"


def page_routes(services: ApiServices) -> list[BaseRoute]:
    """The routes to include in the daemon's web app, after the API's."""
    return [Mount("/", app=_LazyPages(services), name="pages")]


class _LazyPages:
    """Builds the pages app on the first request, its file reads (session key,
    templates, stylesheet) in a thread: the daemon builds its routes inside the event
    loop, where blocking file I/O has no place."""

    def __init__(self, services: ApiServices) -> None:
        self.services = services
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            async with self._lock:
                if self._app is None:
                    self._app = await asyncio.to_thread(build_pages_app, self.services)
        await self._app(scope, receive, send)


def build_pages_app(services: ApiServices) -> Starlette:
    """The pages as one Starlette app (blocking: reads the key and the templates)."""
    web = services.settings.web
    secret = load_or_create_secret(session_key_path(services.settings))
    templates = _load_templates(services.settings.scheduler.timezone)
    stylesheet = (resources.files("nexusmail") / "templates" / "admin" / STYLESHEET
                  ).read_bytes()
    pages = Pages(services, templates, auth.LoginLimiter(
        services.clock, per_ip=web.login_failures_per_ip,
        per_account=web.login_failures_per_account, window_s=web.login_window_s),
        auth.KnownDevices(secret))

    async def css(request: Request) -> Response:
        return Response(stylesheet, media_type="text/css",
                        headers={"Cache-Control": "public, max-age=3600"})

    async def not_found(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return error_page(pages, request, 405, msg("That does not work with this method."))
        return error_page(pages, request, 404, msg("There is no such page."))

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, PageError):
            status, message = exc.status, exc.message
        elif isinstance(exc, ApiError):  # its catalogued message, when it has one
            status, message = exc.status, message_of(exc)
        else:  # the tickets layer's NotFound and Conflict name what is wrong
            status, message = (404 if isinstance(exc, NotFound) else 409), message_of(exc)
        return error_page(pages, request, status, message)

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        log.warning("admin.csrf_rejected", path=request.url.path)
        return error_page(pages, request, 403, msg(
            "The form had expired or did not come from this page. Go back, reload it and"
            " retry."))

    async def login_required(request: Request, exc: Exception) -> Response:
        return login_redirect(request)

    async def storage_failed(request: Request, exc: Exception) -> Response:
        log.error("admin.storage_failed", path=request.url.path, error=str(exc))
        return error_page(pages, request, 503, msg("Storage is unavailable; retry shortly."))

    routes: list[BaseRoute] = [
        Route(f"/static/{STYLESHEET}", css, methods=["GET"]),
        *login_routes(pages), *list_routes(pages), *thread_routes(pages),
        *schedule_routes(pages), *schedule_edit_routes(pages), *customer_routes(pages),
        *installed_base_routes(pages),
        *case_link_routes(pages),
        *timesheet_routes(pages), *activity_form_routes(pages),
        *settings_routes(pages), *employee_routes(pages), *muted_peer_routes(pages),
        *team_page_routes(pages), *sequence_page_routes(pages),
        *operator_routes(pages), *token_routes(pages),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=secret.decode(),
                       session_cookie=auth.SESSION_COOKIE, max_age=web.session_max_age_s,
                       same_site="lax", https_only=web.secure_cookies),
        ],
        exception_handlers={
            HTTPException: not_found,
            PageError: refused, ApiError: refused, NotFound: refused, Conflict: refused,
            CsrfRejected: csrf_rejected,
            LoginRequired: login_required,
            StorageError: storage_failed, BlobUnavailable: storage_failed,
        },
    )


def _load_templates(timezone: str) -> dict[str, jinja2.Environment]:
    """One environment per language, each with its catalogue and date formats, every
    template compiled now (in the builder's thread, not on a request)."""
    environments = {}
    for language in LANGUAGES:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("nexusmail", "templates/admin"),
            # Everything from mail goes through here: escaping is not optional.
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,  # no file checks on the request path
            trim_blocks=True, lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        catalogue = translations(language)
        env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]
        env.globals["label"] = lambda value, c=catalogue: c.gettext(LABELS.get(value, value))
        env.globals["language_names"] = LANGUAGE_NAMES
        env.filters.update(make_filters(timezone, language))
        for name in env.list_templates(extensions=["j2"]):
            env.get_template(name)
        environments[language] = env
    return environments
