"""A retired operator over real HTTP against the daemon: the open session ends at once,
the right password no longer logs in; brought back, it does again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from admin_harness import add_operator, log_in, logged_in
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import SystemClock
from nexusmail.tickets import operators

OPERATOR = "anna@firm.test"


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(make_settings(tmp_path / "data")) as running:
        await add_operator(running, OPERATOR)
        yield running


async def set_active(daemon: Daemon, active: bool) -> None:
    """What `nexusmail operator disable|enable` does, on the daemon's own store."""
    now = SystemClock().now()
    await daemon.running.store.write(
        lambda tx: operators.set_active(tx, email=OPERATOR, active=active, now=now))


async def test_a_disabled_operator_cannot_log_in(daemon: Daemon) -> None:
    """Disabling ends the open session (the page sends to the login) and refuses the
    login with the right password; enabling lets it in again."""
    async with logged_in(daemon, OPERATOR) as client:
        assert (await client.get("/")).status_code == 200
        await set_active(daemon, False)
        assert (await client.get("/")).status_code == 303
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        assert (await log_in(client, OPERATOR)).status_code != 303
    await set_active(daemon, True)
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        assert (await log_in(client, OPERATOR)).status_code == 303
