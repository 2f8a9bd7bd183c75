"""Hostile mail on the admin page: nothing in it runs, nothing in it loads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from admin_harness import add_operator, customer_mail, log_in_browser
from daemon_harness import Daemon
from playwright.async_api import Dialog, Page, expect

from nexusmail.clock import SystemClock
from nexusmail.tickets.cases import NewMessage, add_message
from nexusmail.tickets.models import Direction, MessageKind

OPERATOR = "anna@firm.test"


class Listener:
    """A real server standing in for the attacker's host: it counts every connection."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"


@pytest.fixture
async def attacker() -> AsyncIterator[tuple[Listener, str]]:
    listener = Listener()
    host = await listener.start()
    yield listener, host
    assert listener.server is not None
    listener.server.close()
    await listener.server.wait_closed()


def hostile_html(host: str) -> str:
    return f"""<html><head>
<style>body {{ background: url(http://{host}/css-bg.png) }}</style>
<script>alert('xss-script'); console.log('xss-script')</script>
<link rel="stylesheet" href="http://{host}/style.css">
<meta http-equiv="refresh" content="0;url=http://{host}/refresh">
</head><body onload="alert('xss-onload')">
<p>Gentile assistenza, <b>allego il modulo</b>.</p>
<img src="http://{host}/pixel.gif" width="1" height="1">
<img src="x" onerror="alert('xss-onerror'); console.log('xss-onerror')">
<a href="javascript:alert('xss-link')">apri il modulo</a>
<a href="jav&#x09;ascript:console.log('xss-link2')">apri anche questo</a>
<svg onload="alert('xss-svg')"><circle r="4"/></svg>
<iframe src="http://{host}/frame"></iframe>
<object data="http://{host}/object"></object>
<form action="http://{host}/steal"><input name="pw"><button>invia</button></form>
<div style="background-image: url(http://{host}/div-bg.png)"
     onmouseover="alert('xss-hover')">passa qui</div>
</body></html>"""


async def test_hostile_mail_runs_nothing_and_loads_nothing(
    daemon: Daemon, page: Page, attacker: tuple[Listener, str]
) -> None:
    """Scripts, handlers, javascript: links, remote images: no dialog, log or request."""
    listener, host = attacker
    await add_operator(daemon, OPERATOR)
    mail = customer_mail("Foto <script>alert('xss-subject')</script>",
                         "Vedi <img src=x onerror=alert('xss-text')>", html=hostile_html(host))
    assert (await daemon.send(mail))[0] == 250
    # The same HTML stored as it came, unsanitized (a row from before a sanitizer fix):
    # the page sanitizes again when it renders.
    now = SystemClock().now()
    await daemon.running.store.write(lambda tx: add_message(tx, 1, NewMessage(
        kind=MessageKind.CUSTOMER_MAIL, direction=Direction.IN, from_addr="x@example.it",
        body_text="seconda mail", body_html=hostile_html(host)), now=now))

    dialogs: list[str] = []
    console: list[str] = []
    requests: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    # On the context: frames and any popup a click might open are covered too.
    page.context.on("dialog", dismiss)
    page.context.on("console", lambda message: console.append(message.text))
    page.context.on("request", lambda request: requests.append(request.url))

    await log_in_browser(page, OPERATOR)
    response = await page.goto("/interventions/1")
    assert response is not None
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    await expect(page.locator("h1")).to_contain_text("<script>alert('xss-subject')</script>")
    await expect(page.locator(".kind-customer_mail").first).to_contain_text(
        "<img src=x onerror=alert('xss-text')>")

    for summary in await page.locator("details.html summary").all():
        await summary.click()
    frames = page.locator("details.html iframe")
    await expect(frames).to_have_count(2)
    assert await frames.first.get_attribute("sandbox") == ""
    for index in range(2):
        frame = page.frame_locator("details.html iframe").nth(index)
        await expect(frame.locator("p")).to_contain_text("allego il modulo")
        await frame.locator("text=apri il modulo").click()
        await frame.locator("text=apri anche questo").click()
        await frame.locator("text=passa qui").hover()
    await page.wait_for_timeout(300)  # let anything that would fire, fire

    assert dialogs == []
    assert [text for text in console if "xss" in text] == []
    assert listener.connections == 0
    leaving = [url for url in requests
               if not url.startswith(daemon.web_url) and not url.startswith("about:")]
    assert leaving == []

