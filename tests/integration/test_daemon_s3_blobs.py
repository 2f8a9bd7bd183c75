"""A daemon whose `[blobs] url` is s3://… (moto's S3 server on loopback): a mail's
attachment goes to the bucket, the API and the admin page serve it from there, an
operator's reply carries a file read back from it, and a tampered object is refused."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import httpx
import pytest
from admin_harness import add_operator, logged_in
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server
from structlog.testing import capture_logs

from nexusmail.admin.tokens import create_token
from nexusmail.blobs.store import BlobUnavailable
from nexusmail.clock import SystemClock

PDF = b"%PDF-1.7 quotation for the boiler service\n" * 200
PNG = b"\x89PNG\r\n\x1a\n not really a picture" * 20


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys as a deployment passes them: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)


@pytest.fixture
def bucket(s3: S3Server) -> str:
    return s3.new_bucket()


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller, s3: S3Server, bucket: str,
                 aws_keys: None) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port,
                             blobs=s3.blobs_section(bucket, prefix="firm/attachments"))
    async with running_daemon(settings) as running:
        yield running


def mail_with_files() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "cliente@example.it", SUPPORT, "Preventivo caldaia"
    msg["Message-ID"] = "<s3-files@example.it>"
    msg.set_content("In allegato il preventivo e la foto.")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="preventivo.pdf")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="foto.png")
    return msg.as_bytes()


def key_of(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"firm/attachments/{digest[:2]}/{digest[2:4]}/{digest}"


async def api_client(daemon: Daemon) -> httpx.AsyncClient:
    token = await daemon.running.store.write(
        partial(create_token, name="desk", now=SystemClock().now()))
    return httpx.AsyncClient(base_url=daemon.web_url + "/api/v1",
                             headers={"Authorization": f"Bearer {token}"})


async def test_attachments_live_in_the_bucket_and_are_served_from_it(
        daemon: Daemon, relay: Controller, s3: S3Server, bucket: str, tmp_path: Path) -> None:
    """The mail's files and its raw bytes are objects under the prefix (none under the
    data dir, the raw_messages row empty); the API and the admin page download them
    byte for byte and preview the image; an operator's reply with a file leaves with
    that file, read back from the bucket."""
    assert (await daemon.send(mail_with_files()))[0] == 250
    await relay.handler.wait_for_async(1)  # the acknowledgement
    relay.handler.clear()
    [(raw_sha, in_blobs, kept)] = await daemon.query(
        "SELECT sha256, in_blobs, length(data) FROM raw_messages")
    assert (in_blobs, kept) == (1, 0)  # the raw mail is in the bucket, not the database
    listed = s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    raw_key = f"firm/attachments/{raw_sha[:2]}/{raw_sha[2:4]}/{raw_sha}"
    assert sorted(o["Key"] for o in listed) == sorted([key_of(PDF), key_of(PNG), raw_key])
    assert not (tmp_path / "data" / "blobs").exists()
    ids = {name: i for i, name in await daemon.query("SELECT id, filename FROM attachments")}
    [(message_id,)] = await daemon.query("SELECT id FROM messages WHERE kind = 'customer_mail'")

    async with await api_client(daemon) as api:
        pdf = await api.get(f"/attachments/{ids['preventivo.pdf']}")
        assert pdf.status_code == 200
        assert pdf.content == PDF
        assert pdf.headers["content-disposition"].startswith("attachment;")
        original = await api.get(f"/messages/{message_id}/raw")
        assert original.status_code == 200
        assert hashlib.sha256(original.content).hexdigest() == raw_sha
        reply = await api.post("/interventions/1/replies", data={"text": "Ecco l'offerta."},
                               files={"file": ("offerta.pdf", PDF[:999], "application/pdf")})
        assert reply.status_code == 201, reply.text
    [sent] = await relay.handler.wait_for_async(1)
    [attached] = list(sent.message().iter_attachments())
    assert attached.get_content() == PDF[:999]
    assert s3.client().head_object(Bucket=bucket, Key=key_of(PDF[:999]))["ContentLength"] == 999

    await add_operator(daemon, "op@firm.test")
    async with logged_in(daemon, "op@firm.test") as client:
        page_pdf = await client.get(f"/attachments/{ids['preventivo.pdf']}")
        assert page_pdf.content == PDF
        preview = await client.get(f"/attachments/{ids['foto.png']}/preview")
        assert preview.status_code == 200
        assert preview.content == PNG
        page_raw = await client.get(f"/messages/{message_id}/raw")
        assert hashlib.sha256(page_raw.content).hexdigest() == raw_sha


async def test_a_tampered_object_is_never_served(daemon: Daemon, s3: S3Server,
                                                 bucket: str) -> None:
    """Other bytes written under an attachment's key: the API answers 500 saying it
    fails its integrity check, the page refuses it too, and the log names the digest."""
    assert (await daemon.send(mail_with_files()))[0] == 250
    ids = {name: i for i, name in await daemon.query("SELECT id, filename FROM attachments")}
    s3.client().put_object(Bucket=bucket, Key=key_of(PDF), Body=b"%PDF a forged quotation")
    async with await api_client(daemon) as api:
        with capture_logs() as logs:
            response = await api.get(f"/attachments/{ids['preventivo.pdf']}")
        assert response.status_code == 500
        assert "fails its integrity check" in response.json()["error"]
        assert b"forged" not in response.content
    assert [e["sha256"] for e in logs if e["event"] == "blobs.corrupt"] == [
        hashlib.sha256(PDF).hexdigest()]
    await add_operator(daemon, "op@firm.test")
    async with logged_in(daemon, "op@firm.test") as client:
        page = await client.get(f"/attachments/{ids['preventivo.pdf']}")
        assert page.status_code == 500
        assert b"forged" not in page.content
        thread = await client.get("/interventions/1")
        assert thread.status_code == 200


@pytest.mark.usefixtures("aws_keys")
async def test_a_bucket_that_cannot_be_reached_stops_the_start(
        tmp_path: Path, s3: S3Server) -> None:
    """A bucket that does not exist: the daemon does not start, and says which store."""
    settings = make_settings(tmp_path / "data",
                             blobs=s3.blobs_section("no-such-bucket-here"))
    with pytest.raises(BlobUnavailable, match="s3://no-such-bucket-here"):
        async with running_daemon(settings):
            pass
