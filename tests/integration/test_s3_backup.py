"""Backup and restore with the attachments in S3 (moto on loopback): the backup leaves
them in the bucket and says so; a backup of local files restored onto an S3 install
puts them in the bucket; `nexusmail blobs import` moves a local tree there."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import SUPPORT, config_toml
from s3_server import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server, s3_server

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.local import LocalBlobStore
from nexusmail.blobs.open import open_blob_store
from nexusmail.cli.main import main
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Envelope, Ingest
from nexusmail.service.backup import MANIFEST_NAME
from nexusmail.storage.target import open_store

pytestmark = pytest.mark.sqlite_only(
    reason="backs the SQLite file up; the pg_dump path hands the attachments the same way")

PHOTO = b"\xff\xd8 the boiler's type plate" * 64


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture(autouse=True)
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)


def write_config(path: Path, data_dir: Path, blobs: dict[str, Any] | None = None) -> Settings:
    raw: dict[str, Any] = {"storage": {"data_dir": str(data_dir)},
                           "mail": {"support_addresses": [SUPPORT]},
                           "ingest": {"parse_processes": 0}}
    if blobs:
        raw["blobs"] = blobs
    path.write_text(config_toml(raw), encoding="utf-8")
    return Settings.model_validate(raw)


async def ingest_photo(settings: Settings) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "customer@example.org", SUPPORT, "Type plate"
    msg.set_content("The photo of the type plate.")
    msg.add_attachment(PHOTO, maintype="image", subtype="jpeg", filename="plate.jpg")
    store = open_store(settings)
    await store.open()
    blobs = open_blob_store(settings)
    try:
        await Ingest(store, blobs, settings, SystemClock()).accept(
            msg.as_bytes(), Envelope("customer@example.org", [SUPPORT]), "smtp")
    finally:
        blobs.close()
        await store.close()


def run(*argv: str) -> int:
    return main(list(argv))


async def test_a_backup_leaves_s3_attachments_in_the_bucket_and_says_so(
        s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With `[blobs] url = s3://…` the backup holds the database but no attachment file,
    its manifest names the bucket, and its output says to keep the bucket safe; the
    restore onto the same bucket finds every attachment there."""
    blobs = s3.blobs_section(s3.new_bucket())
    config = tmp_path / "nexusmail.toml"
    settings = write_config(config, tmp_path / "data", blobs)
    await ingest_photo(settings)
    dest = tmp_path / "backup"
    capsys.readouterr()
    assert await asyncio.to_thread(run, "backup", str(dest), "--config", str(config)) == 0
    assert f"attachments stay in {blobs['url']}" in capsys.readouterr().out
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert manifest["blobs"] == {"files": 0, "bytes": 0, "object_store": blobs["url"]}
    assert not (dest / "blobs").exists()

    restored_config = tmp_path / "restored.toml"
    restored = write_config(restored_config, tmp_path / "restored", blobs)
    assert await asyncio.to_thread(run, "restore", str(dest), "--config",
                                   str(restored_config)) == 0
    store = open_blob_store(restored)
    assert store.get(sha256_hex(PHOTO)) == PHOTO


async def test_a_local_backup_restored_onto_s3_puts_the_files_in_the_bucket(
        s3: S3Server, tmp_path: Path) -> None:
    """Moving house: a backup of an install with local files, restored with a config
    whose `[blobs] url` is s3://…, leaves every attachment in the bucket, checked."""
    config = tmp_path / "old.toml"
    await ingest_photo(write_config(config, tmp_path / "old"))
    dest = tmp_path / "backup"
    assert await asyncio.to_thread(run, "backup", str(dest), "--config", str(config)) == 0
    assert json.loads((dest / MANIFEST_NAME).read_text())["blobs"]["files"] == 1

    bucket = s3.new_bucket()
    new_config = tmp_path / "new.toml"
    new = write_config(new_config, tmp_path / "new", s3.blobs_section(bucket))
    assert await asyncio.to_thread(run, "restore", str(dest), "--config", str(new_config)) == 0
    assert open_blob_store(new).get(sha256_hex(PHOTO)) == PHOTO
    assert not (tmp_path / "new" / "blobs").exists()


def test_blobs_import_puts_a_local_tree_into_s3(s3: S3Server, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`blobs import DIR` puts each file of a local tree in the bucket, leaves out (and
    reports, exit 1) a file whose bytes no longer match its name, and a second run
    changes nothing."""
    local = LocalBlobStore(tmp_path / "blobs")
    digests = [local.put(f"attachment {n}".encode()) for n in range(3)]
    damaged = local.put(b"about to rot")
    local.path_for(damaged).write_bytes(b"rotted")
    bucket = s3.new_bucket()
    config = tmp_path / "s3.toml"
    settings = write_config(config, tmp_path / "data", s3.blobs_section(bucket))
    capsys.readouterr()
    assert run("blobs", "import", str(tmp_path / "blobs"), "--config", str(config)) == 1
    assert "3 files put" in capsys.readouterr().out
    store = open_blob_store(settings)
    assert sorted(b.digest for b in store.scan()) == sorted(digests)
    assert store.get(digests[0]) == b"attachment 0"
    assert run("blobs", "import", str(tmp_path / "blobs"), "--config", str(config)) == 1
    assert len(list(store.scan())) == 3


async def test_a_held_mail_whose_bytes_are_in_s3_is_shown_and_retried(
        s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mail kept back (held) after its raw bytes went to the bucket: `quarantine show`
    reads its headers from there and `quarantine retry` runs it through again."""
    config = tmp_path / "nexusmail.toml"
    settings = write_config(config, tmp_path / "data", s3.blobs_section(s3.new_bucket()))
    await ingest_photo(settings)
    conn = sqlite3.connect(tmp_path / "data" / "nexusmail.sqlite3")
    try:
        assert conn.execute("SELECT in_blobs FROM raw_messages").fetchall() == [(1,)]
        # As the loop guard leaves a muted sender's mail: kept, to be retried later.
        with conn:
            conn.execute("UPDATE inbound SET outcome = 'held', intervention_number = NULL")
            conn.execute("DELETE FROM outbox")
        [(inbound_id,)] = conn.execute("SELECT id FROM inbound").fetchall()
    finally:
        conn.close()
    capsys.readouterr()
    assert await asyncio.to_thread(run, "quarantine", "show", str(inbound_id),
                                   "--config", str(config)) == 0
    assert "Subject: Type plate" in capsys.readouterr().out
    assert await asyncio.to_thread(run, "quarantine", "retry", str(inbound_id),
                                   "--config", str(config)) == 0
    assert "now " in capsys.readouterr().out
