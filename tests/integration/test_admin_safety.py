"""Admin page safety over plain HTTP against the real daemon: sessions, CSRF, rate limit."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from admin_harness import (
    OPERATOR_PASSWORD,
    add_operator,
    csrf_of,
    customer_mail,
    log_in,
    logged_in,
)
from daemon_harness import Daemon, make_settings, running_daemon

from nexusmail.clock import FakeClock, SystemClock
from nexusmail.tickets import operators

OPERATOR = "anna@firm.test"


@pytest.fixture
def clock() -> FakeClock:
    # Starts at the real date: session expiry is checked against cookie timestamps
    # that itsdangerous takes from the real clock.
    return FakeClock(SystemClock().now())


@pytest.fixture
async def daemon(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", web={
        "login_failures_per_account": 3, "login_failures_per_ip": 5, "login_window_s": 600,
        "session_max_age_s": 3600})
    async with running_daemon(settings, clock=clock) as running:
        await add_operator(running, OPERATOR)
        yield running


async def test_pages_need_a_login(daemon: Daemon) -> None:
    """Every page and download sends a visitor to the login form, keeping where to return."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        for path in ("/", "/interventions/1", "/employees", "/schedules", "/attachments/1",
                     "/messages/1/raw", "/interventions/new"):
            reply = await client.get(path)
            assert reply.status_code == 303, path
            assert reply.headers["location"].startswith("/login?next=%2F")


async def test_session_cookie_is_signed_httponly_samesite_with_expiry(daemon: Daemon) -> None:
    """The login sets an HttpOnly, SameSite=Lax cookie with Max-Age; a forged one fails."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        reply = await log_in(client, OPERATOR)
        assert reply.status_code == 303
        cookie = reply.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "max-age=3600" in cookie
        assert (await client.get("/")).status_code == 200
        value = client.cookies["nexusmail_admin"]
        client.cookies.set("nexusmail_admin", value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
        assert (await client.get("/")).status_code == 303


async def test_session_ends_after_its_max_age(daemon: Daemon, clock: FakeClock) -> None:
    """A login older than [web] session_max_age_s sends the operator back to the form."""
    async with logged_in(daemon, OPERATOR) as client:
        assert (await client.get("/")).status_code == 200
        clock.advance(timedelta(seconds=3601))
        assert (await client.get("/")).status_code == 303


async def test_new_password_ends_open_sessions(daemon: Daemon) -> None:
    """Setting a new password logs out every session opened with the old one."""
    async with logged_in(daemon, OPERATOR) as client:
        assert (await client.get("/")).status_code == 200
        new_hash = operators.hash_password("another long passphrase")
        now = SystemClock().now()
        await daemon.running.store.write(lambda tx: operators.set_password(
            tx, email=OPERATOR, password_hash=new_hash, now=now))
        assert (await client.get("/")).status_code == 303


async def test_login_is_rate_limited_per_account(daemon: Daemon) -> None:
    """After 3 failures the account answers 429, even to the right password."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        for _ in range(3):
            assert (await log_in(client, OPERATOR, "wrong password!")).status_code == 401
        refused = await log_in(client, OPERATOR)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many failed logins" in refused.text


async def test_login_is_rate_limited_per_address(daemon: Daemon, clock: FakeClock) -> None:
    """Failures spread over many accounts still stop one client; the window frees it."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        for n in range(5):
            assert (await log_in(client, f"guess{n}@firm.test", "x" * 12)).status_code == 401
        assert (await log_in(client, OPERATOR)).status_code == 429
        clock.advance(timedelta(seconds=601))
        assert (await log_in(client, OPERATOR)).status_code == 303


async def test_wrong_password_and_unknown_account_read_alike(daemon: Daemon) -> None:
    """The answer does not tell which addresses are operators."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        wrong = await log_in(client, OPERATOR, "not the password")
        unknown = await log_in(client, "nobody@firm.test", OPERATOR_PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong address or password." in wrong.text
    assert "Wrong address or password." in unknown.text


async def test_posts_without_the_sessions_csrf_token_are_refused(daemon: Daemon) -> None:
    """Close with no token, or another session's token: 403, and nothing changes."""
    assert (await daemon.send(customer_mail("Caldaia", "In blocco.")))[0] == 250
    async with logged_in(daemon, OPERATOR) as other:
        foreign_token = csrf_of((await other.get("/")).text)
    async with logged_in(daemon, OPERATOR) as client:
        for data in ({}, {"csrf_token": foreign_token}, {"csrf_token": ""}):
            reply = await client.post("/interventions/1/close", data=data)
            assert reply.status_code == 403
            assert "did not come from this page" in reply.text
        assert await daemon.query("SELECT status FROM interventions") == [("open",)]
        token = csrf_of((await client.get("/interventions/1")).text)
        closed = await client.post("/interventions/1/close", data={"csrf_token": token})
        assert closed.status_code == 303
        assert await daemon.query("SELECT status FROM interventions") == [("closed",)]


async def test_login_form_needs_its_csrf_token(daemon: Daemon) -> None:
    """A login posted from another site (no token) is refused (login CSRF)."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        reply = await client.post("/login", data={"email": OPERATOR,
                                                  "password": OPERATOR_PASSWORD})
        assert reply.status_code == 403
        assert (await client.get("/")).status_code == 303, "not logged in"


async def test_login_never_redirects_off_site(daemon: Daemon) -> None:
    """`next` pointing elsewhere (//evil, https://) lands on the list instead."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            form = await client.get("/login")
            reply = await client.post("/login", data={
                "csrf_token": csrf_of(form.text), "email": OPERATOR,
                "password": OPERATOR_PASSWORD, "next": target})
            assert reply.headers["location"] == "/"


async def test_pages_send_a_strict_csp_and_no_sniffing(daemon: Daemon) -> None:
    """Every page forbids scripts and foreign loads, and cannot be framed."""
    async with logged_in(daemon, OPERATOR) as client:
        reply = await client.get("/")
    csp = reply.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp
    assert "frame-ancestors 'none'" in csp
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert re.search(r"<script", reply.text) is None


async def test_api_keeps_its_bearer_auth_and_no_session(daemon: Daemon) -> None:
    """The JSON API beside the pages: still 401 without a token, and sets no cookie."""
    async with logged_in(daemon, OPERATOR) as client:
        reply = await client.get("/api/v1/interventions")
    assert reply.status_code == 401
    assert "set-cookie" not in reply.headers


async def test_logout_ends_the_session_for_every_copy_of_the_cookie(daemon: Daemon) -> None:
    """A cookie copied before logout no longer opens pages: the session is gone from
    the store, not only from the browser that logged out."""
    async with logged_in(daemon, OPERATOR) as client:
        copied = client.cookies["nexusmail_admin"]
        page = await client.get("/")
        await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    async with httpx.AsyncClient(base_url=daemon.web_url,
                                 cookies={"nexusmail_admin": copied}) as thief:
        assert (await thief.get("/")).status_code == 303
    assert await daemon.query("SELECT count(*) FROM operator_sessions") == [(0,)]


async def test_deactivating_an_operator_ends_their_sessions(daemon: Daemon) -> None:
    """An operator set inactive is logged out at their next request."""
    async with logged_in(daemon, OPERATOR) as client:
        assert (await client.get("/")).status_code == 200
        await daemon.running.store.write(
            lambda tx: tx.execute("UPDATE operators SET active = 0"))
        assert (await client.get("/")).status_code == 303


async def test_forwarded_for_from_an_untrusted_client_is_ignored(daemon: Daemon) -> None:
    """Without [web] trusted_proxies, X-Forwarded-For cannot give each guess a fresh
    address: the failures still count against the connection's own address."""
    async with httpx.AsyncClient(base_url=daemon.web_url) as client:
        for n in range(5):
            client.headers["X-Forwarded-For"] = f"198.51.100.{n + 1}"
            assert (await log_in(client, f"guess{n}@firm.test", "x" * 12)).status_code == 401
        client.headers["X-Forwarded-For"] = "198.51.100.99"
        assert (await log_in(client, OPERATOR)).status_code == 429


async def test_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    """Behind a proxy listed in [web] trusted_proxies, the forwarded address is the
    client: one client's failures do not stop another behind the same proxy."""
    settings = make_settings(tmp_path / "data", web={
        "login_failures_per_ip": 3, "trusted_proxies": ["127.0.0.0/8"]})
    async with running_daemon(settings) as running:
        await add_operator(running, OPERATOR)
        async with httpx.AsyncClient(base_url=running.web_url) as client:
            client.headers["X-Forwarded-For"] = "203.0.113.7"
            for n in range(3):
                assert (await log_in(client, f"guess{n}@firm.test", "x" * 12)
                        ).status_code == 401
            assert (await log_in(client, OPERATOR)).status_code == 429
            client.headers["X-Forwarded-For"] = "192.0.2.10"
            assert (await log_in(client, OPERATOR)).status_code == 303


async def test_the_operator_logs_in_from_a_known_browser_while_the_account_is_attacked(
    daemon: Daemon,
) -> None:
    """Guessing an account's password from elsewhere locks it for new browsers only:
    the browser its operator used before still gets in with the right password."""
    async with logged_in(daemon, OPERATOR) as operator_browser:
        page = await operator_browser.get("/")
        await operator_browser.post("/logout", data={"csrf_token": csrf_of(page.text)})
        async with httpx.AsyncClient(base_url=daemon.web_url) as attacker:
            for _ in range(3):
                assert (await log_in(attacker, OPERATOR, "wrong password!")).status_code == 401
            assert (await log_in(attacker, OPERATOR)).status_code == 429
        assert (await log_in(operator_browser, OPERATOR)).status_code == 303
        assert (await operator_browser.get("/")).status_code == 200

