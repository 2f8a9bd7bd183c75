"""Helpers for admin page tests: operators, a logged-in HTTP client, mails to send.

    await add_operator(daemon, "anna@firm.test")          # password OPERATOR_PASSWORD
    async with logged_in(daemon, "anna@firm.test") as client:
        page = await client.get("/")
        token = csrf_of(page.text)
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

import httpx
from daemon_harness import SUPPORT, Daemon
from playwright.async_api import Page

from nexusmail.clock import SystemClock
from nexusmail.tickets import operators
from nexusmail.tickets.cases import add_employee

OPERATOR_PASSWORD = "a long operator passphrase"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def add_operator(daemon: Daemon, email: str, password: str = OPERATOR_PASSWORD, *,
                       role: str | None = None, own_customers_only: bool = False) -> int:
    password_hash = operators.hash_password(password)
    now = SystemClock().now()
    return await daemon.running.store.write(lambda tx: operators.add_operator(
        tx, email=email, name=email.partition("@")[0].title(), password_hash=password_hash,
        now=now, role=role, own_customers_only=own_customers_only))


async def add_employees(daemon: Daemon, *people: tuple[str, str, str]) -> None:
    """(email, name, language) each."""
    now = SystemClock().now()
    for email, name, language in people:
        await daemon.running.store.write(
            lambda tx, e=email, n=name, lang=language: add_employee(
                tx, email=e, name=n, language=lang, now=now))


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, email: str,
                 password: str = OPERATOR_PASSWORD) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={
        "csrf_token": csrf_of(form.text), "email": email, "password": password, "next": "/"})


@asynccontextmanager
async def logged_in(daemon: Daemon, email: str) -> AsyncIterator[httpx.AsyncClient]:
    # A login hashes with argon2 (64 MiB): on a busy shared machine it can take
    # seconds, past httpx's 5 s default.
    async with httpx.AsyncClient(base_url=daemon.web_url, timeout=30) as client:
        reply = await log_in(client, email)
        assert reply.status_code == 303, reply.text
        yield client


def customer_mail(subject: str, text: str, *, html: str | None = None,
                  sender: str = "cliente@example.it", name: str = "Rossi Srl") -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{name} <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def tiny_png(width: int = 160, height: int = 100) -> bytes:
    """A real PNG (a browser decodes it), built without an imaging library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(  # each row: filter type 0, then RGB pixels
        b"\x00" + b"".join(bytes((x * 10 % 256, y * 15 % 256, 180)) for x in range(width))
        for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def log_in_browser(page: Page, email: str, password: str = OPERATOR_PASSWORD, *,
                         heading: str = "Interventions") -> None:
    """Open the list, get sent to the login form, log in, land on the list (whose
    heading is `heading` in the operator's language)."""
    await page.goto("/")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button:has-text('Log in')")
    await page.wait_for_selector(f"h1:has-text('{heading}')")
