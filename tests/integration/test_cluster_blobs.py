"""Two daemons on one PostgreSQL database and one S3 store (moto on loopback), each with
its own data dir: what one stores, the other serves; the same file mailed to both at
once is one object; after the sweep no object is left that no row names."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from postgres_server import PostgresCluster
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server

from nexusmail.admin.tokens import create_token
from nexusmail.blobs.gc import sweep_orphans
from nexusmail.blobs.open import open_blob_store
from nexusmail.clock import SystemClock

LOGO = b"\x89PNG the firm's logo, in every customer's signature" * 30


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def customer_mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = f"customer{n}@example.org", SUPPORT
    msg["Subject"], msg["Message-ID"] = f"Boiler {n} is leaking", f"<cluster-blob-{n}@example.org>"
    msg.set_content(f"Boiler {n} leaks; our logo and its photo are attached.")
    msg.add_attachment(LOGO, maintype="image", subtype="png", filename="logo.png")
    msg.add_attachment(f"photo of boiler {n}".encode() * 40, maintype="image",
                       subtype="jpeg", filename=f"boiler-{n}.jpg")
    return msg.as_bytes()


async def api(daemon: Daemon) -> httpx.AsyncClient:
    token = await daemon.running.store.write(
        partial(create_token, name=f"desk-{uuid.uuid4().hex[:6]}", now=SystemClock().now()))
    return httpx.AsyncClient(base_url=daemon.web_url + "/api/v1",
                             headers={"Authorization": f"Bearer {token}"})


async def test_two_daemons_share_one_s3_store(
        tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster, s3: S3Server,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Mails carrying the same logo reach both daemons at once: all are answered 250 and
    the bucket holds the logo once; each daemon downloads every attachment, also those
    the other stored; a reply with a file entered on one leaves with that file whichever
    daemon sends it; the sweep then finds no orphan and removes nothing named."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    bucket = s3.new_bucket()
    first, second = (make_settings(tmp_path / name, relay_port=relay.port,
                                   storage={"database_url": url}, outbound={"lease_s": 3},
                                   blobs=s3.blobs_section(bucket))
                     for name in ("a", "b"))
    async with running_daemon(first) as a, running_daemon(second) as b:
        answers = await asyncio.gather(*(
            (a if n % 2 else b).send(customer_mail(n)) for n in range(6)))
        assert [code for code, _ in answers] == [250] * 6
        keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
        assert sum(k.endswith(hashlib.sha256(LOGO).hexdigest()) for k in keys) == 1
        assert len(keys) == 13  # the logo once, six photos, six mails' raw bytes
        assert await a.query("SELECT count(*) FROM raw_messages WHERE in_blobs = 1"
                             " AND length(data) = 0") == [(6,)]
        assert not (tmp_path / "a" / "blobs").exists()
        assert not (tmp_path / "b" / "blobs").exists()

        rows = await a.query("SELECT id, sha256 FROM attachments ORDER BY id")
        assert len(rows) == 12
        async with await api(a) as on_a, await api(b) as on_b:
            for attachment_id, sha256 in rows:
                for client in (on_a, on_b):
                    response = await client.get(f"/attachments/{attachment_id}")
                    assert response.status_code == 200
                    assert hashlib.sha256(response.content).hexdigest() == sha256
            await relay.handler.wait_for_async(6, within_s=20)  # the acknowledgements
            relay.handler.clear()
            reply = await on_b.post("/interventions/1/replies", data={"text": "Quote."},
                                    files={"file": ("quote.pdf", b"%PDF q" * 99,
                                                    "application/pdf")})
            assert reply.status_code == 201, reply.text
        [sent] = await relay.handler.wait_for_async(1, within_s=20)
        [attached] = list(sent.message().iter_attachments())
        assert attached.get_content() == b"%PDF q" * 99

        blobs = open_blob_store(first)
        report = await sweep_orphans(a.running.store, blobs,
                                     cutoff=SystemClock().now() + timedelta(minutes=1))
        assert (report.scanned, report.referenced, report.removed) == (14, 14, 0)
        named = {sha for (sha,) in await a.query(
            "SELECT sha256 FROM attachments UNION SELECT sha256 FROM raw_messages")}
        assert {blob.digest for blob in blobs.scan()} == named
        blobs.close()
