"""Readiness and metrics routes for monitoring.

- `GET /api/v1/ready` (no token) → 200 when ready, 503 when not; always JSON:
  `{"status": "ready"|"not ready", "reasons": ["<part>: <why>", ...], "storage": {...},
  "smtp": {...}, "imap": {...}, "outbox": {...}, "scheduler": {...}}` (see
  nexusmail.service.readiness for what each part checks). `GET /api/v1/health` stays liveness
  only: it answers whenever the loop runs.
- `GET /metrics` → the Prometheus text format of the daemon's registry (see
  nexusmail.service.metrics). Without a token unless `[web] metrics_public = false`; it is
  outside /api/v1 because that is where scrapers look by default.
"""

from __future__ import annotations

import sqlite3

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nexusmail.admin.api.base import ApiError, ApiServices, authenticate
from nexusmail.service.metrics import Backlog, ScrapeState
from nexusmail.service.readiness import check_ready, read_backlog
from nexusmail.tickets.peer_guard import count_active
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)


def ready_routes(services: ApiServices) -> list[Route]:
    """Mounted under /api/v1 with the other API routes."""
    async def ready(request: Request) -> Response:
        readiness = await check_ready(
            services.store, services.probes, services.health_details().get("imap", {}),
            services.settings, services.clock.now())
        if not readiness.ready:
            log.warning("health.not_ready", reasons=readiness.reasons)
        return JSONResponse(readiness.as_dict(), status_code=200 if readiness.ready else 503)

    return [Route("/ready", ready, methods=["GET"])]


def metrics_routes(services: ApiServices) -> list[Route]:
    """Mounted at the web app's root."""
    async def metrics(request: Request) -> Response:
        if services.metrics is None:
            return JSONResponse({"error": "metrics are not collected here"}, status_code=404)
        if not services.settings.web.metrics_public:
            try:
                await authenticate(services, request)
            except ApiError as exc:  # outside the API's mount: its error handler is not here
                return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)
        now = services.clock.now()
        backlog: Backlog | None = None
        muted: int | None = None
        try:
            async with services.store.read() as conn:
                backlog = await read_backlog(conn, now)
                muted = await count_active(conn, now)
        except (sqlite3.Error, StorageError) as exc:  # the rest of the scrape still helps
            log.warning("metrics.backlog_unreadable", error=str(exc))
        last_tick = services.probes.scheduler_last_tick
        services.metrics.refresh(ScrapeState(
            backlog=backlog, imap=services.health_details().get("imap", {}),
            scheduler_last_tick=last_tick() if last_tick is not None else None,
            muted_peers=muted,
            cluster=services.health_details().get("cluster", {}).get("daemons", ())))
        return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics, methods=["GET"])]
