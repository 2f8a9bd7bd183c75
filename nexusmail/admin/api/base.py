"""What every JSON API route module shares: the services, errors, auth and body reading.

Kept apart from the route modules (admin.api, admin.api_assignments) so each of them
imports it and none imports another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from nexusmail.admin import tokens
from nexusmail.admin.api.models import describe_validation_error, is_malformed_json
from nexusmail.admin.permissions import refusal
from nexusmail.blobs.store import BlobStore
from nexusmail.clock import Clock
from nexusmail.config import Settings
from nexusmail.i18n import Msg
from nexusmail.live_settings import LiveSettings
from nexusmail.service.metrics import Metrics
from nexusmail.service.readiness import Probes
from nexusmail.storage.connections import Storage

if TYPE_CHECKING:  # ingest's modules are not needed to build the routes
    from nexusmail.ingest.accept import Ingest

# An operator's phone entry is a few KB; this leaves room for pasted text while a
# client cannot make us buffer an arbitrary body.
MAX_BODY_BYTES = 4 * 1024 * 1024
# Path ids beyond SQLite's 64-bit integers would overflow at binding time (a 500).
MAX_ID = 2**63 - 1

M = TypeVar("M", bound=BaseModel)


def _nothing() -> None:
    return None


def _no_details() -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class ApiServices:
    """What the API needs from the daemon."""

    store: Storage
    blobs: BlobStore
    # The daemon's settings of the moment (a reload swaps them; read `settings`).
    live_settings: LiveSettings
    clock: Clock
    # Wakes the outbox worker after a write that queued mail (it would poll anyway).
    on_outbox: Callable[[], None] = field(default=_nothing)
    # reply_keys.load_reply_keys(settings): the first signs assignment Reply-To tokens.
    reply_keys: Sequence[bytes] = ()
    # Per-part states for the health route, e.g. {"imap": {account: state}}.
    health_details: Callable[[], dict[str, Any]] = field(default=_no_details)
    # GET /metrics renders this registry (None: the route answers 404).
    metrics: Metrics | None = None
    # What GET /api/v1/ready asks of the running parts (admin.api_health).
    probes: Probes = field(default_factory=Probes)
    # The daemon's ingest pipeline, for letting held mails in from the page (None: the
    # page says to use `nexusmail quarantine retry`).
    ingest: Ingest | None = None

    @property
    def settings(self) -> Settings:
        return self.live_settings.current


class ApiError(Exception):
    """A request we refuse, with the status and the message the client gets: English
    text, or a catalogued message (`msg(...)`) when a page may show the refusal too, so
    that the page translates it (`nexusmail.i18n.message_of`) while the API's client
    still reads the English."""

    def __init__(self, status: int, message: str | Msg,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = str(message)
        self.headers = headers


async def authenticate(services: ApiServices, request: Request) -> tokens.TokenInfo:
    """The bearer token's record, or a 401; for a token acting as an operator, a 403
    when their role may not do this, a 404 for a case outside their customers."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    token, refused = None, None
    if scheme.lower() == "bearer" and credentials.strip():
        async with services.store.read() as conn:
            token = await tokens.find_token(conn, credentials.strip())
            if token is not None and token.operator is not None:
                refused = await refusal(conn, token.operator, request.method,
                                        request.url.path, request.path_params)
    if token is None:
        raise ApiError(401, "a valid bearer token is required",
                       headers={"WWW-Authenticate": "Bearer"})
    if refused == 403 and token.operator is not None:
        raise ApiError(403, f"the operator's role ({token.operator.role}) may not do this")
    if refused == 404:
        raise ApiError(404, "not found")
    return token


def parse_body(services: ApiServices, model: type[M], raw: bytes) -> M:
    """`raw` as `model` in strict JSON mode: 400 when not JSON, 422 naming each field."""
    try:
        return model.model_validate_json(
            raw, strict=True, context={"limits": services.settings.limits}
        )
    except ValidationError as exc:
        if is_malformed_json(exc):
            raise ApiError(400, "the request body is not valid JSON") from None
        raise ApiError(422, describe_validation_error(exc)) from None


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def int_param(value: str | None, name: str, *, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiError(422, f"{name}: should be a whole number from {low} to {high}")
    return int(value)


def path_id(request: Request, name: str) -> int:
    value = int(request.path_params[name])
    if value > MAX_ID:
        raise ApiError(404, f"{name} {value} does not exist")
    return value
