"""Browser tests: Debian's chromium driven by Playwright against the real daemon.

The daemon runs in the test's event loop (daemon_harness) and Playwright's async API
shares that loop, so the page's requests are served while the test awaits them.
Outgoing mail goes to a real SMTP sink. The browser is Debian's `chromium` package
(`make system-deps` installs it); `playwright install` is never needed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import Daemon, make_settings, running_daemon
from playwright.async_api import Browser, Page, async_playwright
from smtp_sink import start_sink

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def relay() -> Iterator[Controller]:
    controller = start_sink()
    yield controller
    controller.stop()


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port)
    async with running_daemon(settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, daemon: Daemon) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=daemon.web_url, accept_downloads=True,
                                        viewport={"width": 1100, "height": 800})
    opened = await context.new_page()
    yield opened
    await context.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: NEXUSMAIL_SCREENSHOT_DIR (e.g. docs) or the test's tmp dir."""
    return Path(os.environ.get("NEXUSMAIL_SCREENSHOT_DIR") or tmp_path)

