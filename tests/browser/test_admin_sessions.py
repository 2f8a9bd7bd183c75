"""Logging out in Chromium ends the session on the server, for every copy of the cookie."""

from __future__ import annotations

from admin_harness import add_operator, log_in_browser
from daemon_harness import Daemon
from playwright.async_api import Browser, Page, expect

OPERATOR = "anna@firm.test"


async def test_logout_revokes_a_copied_session_cookie(
    daemon: Daemon, browser: Browser, page: Page
) -> None:
    """Cookies copied out of a logged-in browser stop working for pages and forms as
    soon as the operator clicks "Log out"."""
    await add_operator(daemon, OPERATOR)
    await log_in_browser(page, OPERATOR)
    stolen = await page.context.cookies()
    other = await browser.new_context(base_url=daemon.web_url)
    try:
        await other.add_cookies(stolen)
        copy = await other.new_page()
        await copy.goto("/")
        await expect(copy.locator("button:has-text('Log out')")).to_be_visible()

        await page.click("button:has-text('Log out')")
        await expect(page).to_have_url(f"{daemon.web_url}/login")

        await copy.goto("/")
        await expect(copy).to_have_url(f"{daemon.web_url}/login?next=%2F")
        answer = await copy.request.post("/interventions/1/notes", max_redirects=0,
                                         multipart={"text": "still here?"})
        assert answer.status in (303, 403)
        assert "/login" in answer.headers.get("location", "/login")
    finally:
        await other.close()
    assert await daemon.query("SELECT count(*) FROM messages WHERE kind = 'note'") == [(0,)]
