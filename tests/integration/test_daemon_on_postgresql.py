"""The daemon on PostgreSQL: mail in over SMTP, cases, acknowledgements, follow-ups
and the API, against a real cluster."""

from __future__ import annotations

import asyncio
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from admin_harness import add_operator, logged_in
from admin_harness import customer_mail as admin_mail
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, make_settings, running_daemon
from postgres_server import PostgresCluster

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.mail.html import SANITIZER_VERSION
from nexusmail.tickets import search


def customer_mail(subject: str, body: str, *, message_id: str,
                  in_reply_to: str | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Ana Pop <ana@example.ro>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    msg.set_content(body)
    return msg.as_bytes()


async def test_mail_opens_cases_and_threads_on_postgresql(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """A new request opens #1 and is acknowledged, a redelivery is one effect, a reply
    threads, and the API lists and searches it: the same as on SQLite."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url})
    async with running_daemon(settings) as daemon:
        first = customer_mail("Centrala nu pornește", "Instalația de încălzire e oprită.",
                              message_id="a1@example.ro")
        assert (await daemon.send(first))[0] == 250
        assert (await daemon.send(first))[0] == 250  # an MTA's retry
        [ack] = await relay.handler.wait_for_async(1)
        assert "[#1]" in str(ack.message()["Subject"])
        reply = customer_mail("Re: Centrala", "Tot nu merge.", message_id="a2@example.ro",
                              in_reply_to="a1@example.ro")
        assert (await daemon.send(reply))[0] == 250
        token = await daemon.running.store.write(
            lambda tx: create_token(tx, "pg", SystemClock().now()))
        async with httpx.AsyncClient(base_url=daemon.web_url + "/api/v1", headers={
                "Authorization": f"Bearer {token}"}) as api:
            listed = (await api.get("/interventions")).json()
            assert [i["number"] for i in listed["items"]] == [1]
            detail = (await api.get("/interventions/1")).json()
            kinds = [m["kind"] for m in detail["messages"]]
            assert kinds.count("customer_mail") == 2
            found = (await api.get("/interventions", params={"q": "OPRIT"})).json()
            assert [i["number"] for i in found["items"]] == [1]
            ready = await api.get("/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json()["storage"]["ok"] is True
        outcomes = await daemon.query("SELECT outcome FROM inbound ORDER BY id")
        assert outcomes == [("new_request",), ("follow_up",)]


async def test_a_database_outage_answers_451_then_recovers(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """While PostgreSQL is down a mail gets 451 (the sender keeps it and retries), the
    readiness check says so; once it is back the retry is stored exactly once."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url})
    async with running_daemon(settings) as daemon:
        raw = customer_mail("Centrala", "Nu pornește.", message_id="down@example.ro")
        await asyncio.to_thread(postgres_cluster.crash)
        try:
            assert (await daemon.send(raw))[0] == 451
            async with httpx.AsyncClient(base_url=daemon.web_url, timeout=20) as client:
                assert (await client.get("/api/v1/ready")).status_code == 503
        finally:
            await asyncio.to_thread(postgres_cluster.start)
        assert (await daemon.send(raw))[0] == 250
        assert (await daemon.send(raw))[0] == 250
        # The readers' pool reconnects in the background (with a backoff): ready again
        # within seconds, not at once.
        async with httpx.AsyncClient(base_url=daemon.web_url, timeout=20) as client:
            for _ in range(60):
                if (await client.get("/api/v1/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("not ready 30 s after the database came back")
        assert await daemon.query("SELECT outcome FROM inbound") == [("new_request",)]


async def test_mail_html_sanitized_at_ingest_and_on_first_view_on_postgresql(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """Ingest stores the sanitizer's version with the HTML; a row without it is
    sanitized when the page first shows it, and stored with the version."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url})
    async with running_daemon(settings) as daemon:
        raw = admin_mail("Caldaia", "Vedi sotto.", html="<p>La <b>caldaia</b> perde.</p>")
        assert (await daemon.send(raw))[0] == 250
        assert await daemon.query(
            "SELECT html_sanitizer FROM messages WHERE body_html IS NOT NULL") == [
            (SANITIZER_VERSION,)]
        await daemon.running.store.write(lambda tx: tx.execute(
            "UPDATE messages SET body_html = ?, html_sanitizer = NULL"
            " WHERE body_html IS NOT NULL", ('<p onclick="steal()">vecchia</p>',)))
        await add_operator(daemon, "anna@firm.test")
        async with logged_in(daemon, "anna@firm.test") as client:
            page = await client.get("/interventions/1")
        assert page.status_code == 200
        assert "vecchia" in page.text
        assert "steal()" not in page.text
        assert await daemon.query(
            "SELECT body_html, html_sanitizer FROM messages WHERE body_html IS NOT NULL"
        ) == [("<p>vecchia</p>", SANITIZER_VERSION)]


async def test_the_admin_list_filters_and_searches_on_postgresql(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster
) -> None:
    """The list's text search folds accents and splits addresses as FTS5 does, and its
    status, customer and request-type filters answer on PostgreSQL as on SQLite."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             storage={"database_url": url})
    async with running_daemon(settings) as daemon:
        for n, (subject, body) in enumerate([
                ("Centrala nu pornește", "Instalația de încălzire e oprită."),
                ("Caldaia in blocco", "Scrivete a bob@example.com per il preventivo."),
                ("Perdita", "Il rubinetto perde.")]):
            raw = customer_mail(subject, body, message_id=f"s{n}@example.ro")
            assert (await daemon.send(raw))[0] == 250
        await daemon.running.store.write(lambda tx: tx.execute(
            "UPDATE interventions SET request_type = 'Guasto' WHERE number = 2"))
        async with daemon.running.store.read() as conn:
            async def numbers(**wanted: Any) -> list[int]:
                page = await search.list_page(conn, search.ListFilter(**wanted))
                return [row["number"] for row in page.rows]

            assert await numbers(text="instalatia") == [1]
            assert await numbers(text="bob") == [2]
            assert await numbers(text="example com") == [2]
            assert await numbers(text="caldaia pompa") == []
            assert await numbers(status="open", customer="ANA POP") == [3, 2, 1]
            assert await numbers(request_type="GUASTO") == [2]
            assert await search.request_types(conn) == ["Guasto"]
