"""The S3 blob store going away under a running daemon (moto's server stopped, then
started again on the same port): nothing is acknowledged that is not stored, nothing
is given up for good, and all goes on once the store is back."""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import boto3
import httpx
import pytest
from daemon_harness import SUPPORT, make_settings, running_daemon
from moto.server import ThreadedMotoServer
from s3_server import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from smtp_sink import free_port

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock

BUCKET = "nexusmail-outage"


def moto_on(port: int) -> ThreadedMotoServer:
    """moto's S3 server on a fixed port; its buckets live in this process, so a server
    started again on the port finds them as they were."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "customer@example.org", SUPPORT, f"Boiler {n}"
    msg["Message-ID"] = f"<outage-{n}@example.org>"
    msg.set_content("The photo is attached.")
    msg.add_attachment(b"\xff\xd8 photo" * 100, maintype="image", subtype="jpeg",
                       filename="photo.jpg")
    return msg.as_bytes()


async def test_an_s3_outage_answers_451_and_delays_mail_but_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the store gone: a mail with an attachment is answered 451 and nothing of it
    is stored; a reply with a file answers 503; a reply already queued waits in the
    outbox (retried, never failed). With the store back: the same mail is answered 250
    and its attachment is served."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # No relay listening: every send fails for a moment, so the queued reply is still
    # in the outbox when the store goes away.
    settings = make_settings(tmp_path / "data", relay_port=free_port(), blobs={
        "url": f"s3://{BUCKET}/p", "endpoint_url": endpoint, "region": REGION,
        "timeout_s": 2})
    server = moto_on(port)
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
            Bucket=BUCKET)
        async with running_daemon(settings) as daemon, httpx.AsyncClient(
                base_url=daemon.web_url + "/api/v1", timeout=60) as api:
            token = await daemon.running.store.write(
                partial(create_token, name="desk", now=SystemClock().now()))
            api.headers["Authorization"] = f"Bearer {token}"
            assert (await daemon.send(mail(1)))[0] == 250
            reply = await api.post("/interventions/1/replies", data={"text": "Quote."},
                                   files={"file": ("quote.pdf", b"%PDF" * 50,
                                                   "application/pdf")})
            assert reply.status_code == 201, reply.text

            server.stop()
            code, _ = await daemon.send(mail(2))
            assert code == 451
            assert await daemon.query(
                "SELECT count(*) FROM inbound WHERE message_id = ?",
                "outage-2@example.org") == [(0,)]
            refused = await api.post("/interventions/1/replies", data={"text": "Again."},
                                     files={"file": ("b.pdf", b"%PDF b", "application/pdf")})
            assert refused.status_code == 503
            # The queued reply's file cannot be read: it waits, it is not given up.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                rows = await daemon.query(
                    "SELECT status, last_error FROM outbox WHERE kind = 'operator_reply'")
                if rows and "s3://" in rows[0][1]:
                    break
                await asyncio.sleep(0.2)
            [(status, error)] = rows
            assert status == "pending", error
            assert f"s3://{BUCKET}/p" in error

            server = moto_on(port)
            assert (await daemon.send(mail(2)))[0] == 250
            [(attachment_id,)] = await daemon.query(
                "SELECT a.id FROM attachments a JOIN messages m ON m.id = a.message_id"
                " WHERE m.message_id = ?", "outage-2@example.org")
            got = await api.get(f"/attachments/{attachment_id}")
            assert got.status_code == 200
            assert got.content == b"\xff\xd8 photo" * 100
    finally:
        server.stop()
