"""`nexusmail blobs gc`: the orphans of failed commits go once they are older than the
grace period; blobs a row names, and young ones, stay; a dry run removes nothing."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from daemon_harness import SUPPORT, config_toml, make_config
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.gc import sweep_orphans
from nexusmail.blobs.local import LocalBlobStore
from nexusmail.blobs.open import open_blob_store
from nexusmail.blobs.store import BlobStore
from nexusmail.cli.main import main
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Envelope, Ingest
from nexusmail.storage.target import open_store


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def mail_with_attachment(data: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = "customer@example.org"
    msg["To"] = SUPPORT
    msg["Subject"] = "Boiler photo"
    msg["Message-ID"] = "<gc-photo@example.org>"
    msg.set_content("The photo of the boiler is attached.\n")
    msg.add_attachment(data, maintype="image", subtype="jpeg", filename="boiler.jpg")
    return msg.as_bytes()


async def ingest(settings: Settings, blobs: BlobStore, raw: bytes) -> None:
    """One mail through the real accept seam: its attachment is named by a row."""
    store = open_store(settings)
    await store.open()
    try:
        await Ingest(store, blobs, settings, SystemClock()).accept(
            raw, Envelope("customer@example.org", [SUPPORT]), "smtp")
    finally:
        await store.close()


async def test_the_sweep_removes_only_old_orphans_from_s3(
        s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On S3, of an attachment a mail names, an old orphan and a young orphan, only the
    old orphan goes; a dry run before it counts the same and removes nothing."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    settings = Settings.model_validate(make_config(
        tmp_path / "data", blobs=s3.blobs_section(s3.new_bucket())))
    blobs = open_blob_store(settings)
    photo = b"\xff\xd8 jpeg bytes of the boiler" * 50
    await ingest(settings, blobs, mail_with_attachment(photo))
    old_orphan = await asyncio.to_thread(blobs.put, b"written, then its commit failed")
    await asyncio.sleep(1.5)  # S3 keeps LastModified to the second
    young_orphan = await asyncio.to_thread(blobs.put, b"its commit may still come")
    ages = {b.digest: b.modified for b in await asyncio.to_thread(lambda: list(blobs.scan()))}
    cutoff = ages[young_orphan] - timedelta(seconds=0.5)
    assert ages[old_orphan] < cutoff
    assert ages[sha256_hex(photo)] < cutoff

    store = open_store(settings)
    await store.open()
    try:
        dry = await sweep_orphans(store, blobs, cutoff=cutoff, dry_run=True)
        # The photo and the mail's raw bytes are named; one orphan is young.
        assert (dry.scanned, dry.young, dry.referenced, dry.removed) == (4, 1, 2, 1)
        assert len(list(blobs.scan())) == 4
        seen: list[int] = []
        report = await sweep_orphans(store, blobs, cutoff=cutoff,
                                     progress=lambda r: seen.append(r.scanned))
    finally:
        await store.close()
    assert report.removed_digests == [old_orphan]
    assert seen
    assert seen[-1] == 4
    assert {sha256_hex(photo), young_orphan} < {b.digest for b in blobs.scan()}
    assert old_orphan not in {b.digest for b in blobs.scan()}
    assert blobs.get(sha256_hex(photo)) == photo


def test_writing_an_existing_s3_blob_makes_it_young_again(s3: S3Server, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """A digest written again (a new mail carrying an old orphan's bytes) gets a fresh
    LastModified, so the sweep cannot take it between that write and its commit."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    settings = Settings.model_validate(make_config(
        tmp_path / "data", blobs=s3.blobs_section(s3.new_bucket())))
    blobs = open_blob_store(settings)
    digest = blobs.put(b"the customer's logo, in every mail")
    [first] = [b.modified for b in blobs.scan()]
    time.sleep(1.2)
    assert blobs.put(b"the customer's logo, in every mail") == digest
    [second] = [b.modified for b in blobs.scan()]
    assert second > first
    assert blobs.get(digest) == b"the customer's logo, in every mail"


async def test_gc_command_on_the_local_store(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`blobs gc --dry-run` lists the old orphan and keeps it; `blobs gc` removes it and
    nothing else (the named attachment, although old, and a young orphan stay); a
    malformed --grace is a usage error."""
    raw = make_config(tmp_path / "data")
    config = tmp_path / "nexusmail.toml"
    config.write_text(config_toml(raw), encoding="utf-8")
    settings = Settings.model_validate(raw)
    blobs = LocalBlobStore(tmp_path / "data" / "blobs")
    photo = b"\xff\xd8 another boiler" * 40
    await ingest(settings, blobs, mail_with_attachment(photo))
    old_orphan = blobs.put(b"left by a failed commit")
    young_orphan = blobs.put(b"written a moment ago")
    two_days_ago = time.time() - 2 * 86400
    for digest in (old_orphan, sha256_hex(photo)):
        os.utime(blobs.path_for(digest), (two_days_ago, two_days_ago))
    capsys.readouterr()

    assert await asyncio.to_thread(main, ["blobs", "gc", "--dry-run", "--config",
                                          str(config)]) == 0
    out = capsys.readouterr().out
    assert f"would remove {old_orphan}" in out
    assert "would remove 1 " in out
    assert blobs.path_for(old_orphan).exists()

    assert await asyncio.to_thread(main, ["blobs", "gc", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"removed {old_orphan}" in out
    assert "3 files, 1 younger than 24h, 1 in use; removed 1" in out
    assert not blobs.path_for(old_orphan).exists()
    assert blobs.get(sha256_hex(photo)) == photo
    assert blobs.get(young_orphan) == b"written a moment ago"

    assert await asyncio.to_thread(main, ["blobs", "gc", "--grace", "soon", "--config",
                                          str(config)]) == 2
    assert "--grace 'soon'" in capsys.readouterr().err


def test_writing_an_existing_local_blob_makes_it_young_again(tmp_path: Path) -> None:
    """The local store refreshes the file's time on a second write of the same bytes."""
    blobs = LocalBlobStore(tmp_path / "blobs")
    digest = blobs.put(b"logo")
    os.utime(blobs.path_for(digest), (1_000_000, 1_000_000))
    blobs.put(b"logo")
    assert blobs.path_for(digest).stat().st_mtime > time.time() - 60


async def test_an_orphan_written_again_during_the_sweep_stays(tmp_path: Path) -> None:
    """An old orphan that a new mail writes again after the sweep listed it (its commit
    not yet there) is young again when the sweep comes to remove it: it stays."""
    settings = Settings.model_validate(make_config(tmp_path / "data"))
    blobs = LocalBlobStore(tmp_path / "data" / "blobs")
    await ingest(settings, blobs, mail_with_attachment(b"creates the store"))
    orphan = blobs.put(b"the same logo a new mail is carrying right now")
    os.utime(blobs.path_for(orphan), (1_000_000, 1_000_000))
    written_again: list[str] = []

    def new_mail_arrives(_: object) -> None:
        if not written_again:  # after the listing, before the removals
            written_again.append(blobs.put(b"the same logo a new mail is carrying right now"))

    store = open_store(settings)
    await store.open()
    try:
        cutoff = SystemClock().now() - timedelta(hours=1)
        report = await sweep_orphans(store, blobs, cutoff=cutoff, progress=new_mail_arrives)
    finally:
        await store.close()
    assert written_again == [orphan]
    assert report.removed == 0
    assert blobs.get(orphan) == b"the same logo a new mail is carrying right now"
