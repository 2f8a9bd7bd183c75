"""The JSON API served for real on a loopback port: uvicorn in the test's own loop,
httpx clients (with and without the bearer token), a real store and blob tree.

    async with running_api(store, settings, clock, reply_keys=[KEY]) as api:
        response = await api.client.post("/api/v1/interventions", json={...})
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from nexusmail.admin.api.routes import ApiServices, build_api
from nexusmail.admin.tokens import create_token
from nexusmail.blobs.local import LocalBlobStore
from nexusmail.clock import FakeClock
from nexusmail.config import Settings
from nexusmail.live_settings import LiveSettings
from nexusmail.paths import blobs_path
from nexusmail.tickets.store import Store


@dataclass
class Api:
    client: httpx.AsyncClient      # authenticated
    anonymous: httpx.AsyncClient
    store: Store
    blobs: LocalBlobStore
    token: str
    outbox_wakeups: list[int]

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.store.read() as conn:
            return [tuple(r) for r in await conn.execute_fetchall(sql, params)]


@asynccontextmanager
async def running_api(
    store: Store, settings: Settings, clock: FakeClock, *, reply_keys: Sequence[bytes] = ()
) -> AsyncIterator[Api]:
    wakeups: list[int] = []
    blobs = LocalBlobStore(blobs_path(settings))
    app = build_api(ApiServices(store=store, blobs=blobs, live_settings=LiveSettings(settings),
                                clock=clock, on_outbox=lambda: wakeups.append(1),
                                reply_keys=reply_keys))
    # Port 0: the kernel picks a free port, read back once uvicorn has bound it.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off",
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    token = await store.write(lambda tx: create_token(tx, "tests", clock.now()))
    base = f"http://127.0.0.1:{port}"
    try:
        async with (
            httpx.AsyncClient(base_url=base,
                              headers={"Authorization": f"Bearer {token}"}) as client,
            httpx.AsyncClient(base_url=base) as anonymous,
        ):
            yield Api(client, anonymous, store, blobs, token, wakeups)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
