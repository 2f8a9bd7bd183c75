"""`nexusmail backup` and `restore` on a PostgreSQL store (pg_dump / pg_restore of a real
cluster), attachment files and keys included."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, config_toml, make_config, make_settings, running_daemon
from postgres_server import PostgresCluster

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.cli.main import main
from nexusmail.service.backup import MANIFEST_NAME

PASSWORD = "pw-only-in-the-passfile"  # the test cluster trusts 127.0.0.1: never checked


def customer_mail(n: int, attachment: bytes) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"customer{n}@example.org"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Boiler {n} does not start"
    msg["Message-ID"] = f"<pg-backup-{n}@example.org>"
    msg.set_content(f"Boiler number {n} stopped this morning.\n")
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                       filename=f"photo-{n}.bin")
    return msg.as_bytes()


def pass_through_tools(folder: Path, log: Path) -> str:
    """pg_dump and pg_restore that record their command line and their PGPASSFILE's
    contents, then run the real tools: a PATH to see what the tools were given."""
    folder.mkdir()
    for name in ("pg_dump", "pg_restore"):
        real = shutil.which(name)
        assert real is not None
        script = folder / name
        script.write_text(f'#!/bin/sh\necho "argv: $*" >> {log}\n'
                          f'[ -n "$PGPASSFILE" ] && echo "passfile: $(cat "$PGPASSFILE")"'
                          f' >> {log} && echo "passfile at: $PGPASSFILE" >> {log}\n'
                          f'exec {real} "$@"\n', "utf-8")
        script.chmod(0o755)
    return str(folder)


def any_exists(paths: list[str]) -> bool:
    return any(Path(path).exists() for path in paths)


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
        assert row is not None
        return int(row[0])


async def test_backup_wipe_restore_brings_rows_blobs_and_keys_back(
    tmp_path: Path, relay: Controller, postgres_cluster: PostgresCluster,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pg_dump backup plus the data dir's files; after the database is dropped and the
    data dir deleted, restore brings back every row, the attachment bytes and the keys,
    and the daemon threads a follow-up and numbers a new case after the old ones. The
    password reaches the tools only through a passfile; an occupied store needs --force."""
    name = f"nm_{uuid.uuid4().hex[:12]}"
    url = postgres_cluster.create_database(name)
    data = tmp_path / "data"
    (tmp_path / "db-password").write_text(PASSWORD + "\n", "utf-8")
    storage = {"database_url": url, "database_password_file": str(tmp_path / "db-password")}
    settings = make_settings(data, relay_port=relay.port, storage=storage)
    config = tmp_path / "nm.toml"
    config.write_text(config_toml(make_config(data, storage=storage)), "utf-8")
    payloads = {n: bytes([n]) * (2000 + n) for n in (1, 2)}
    async with running_daemon(settings) as daemon:
        for n, payload in payloads.items():
            assert (await daemon.send(customer_mail(n, payload)))[0] == 250
    key = (data / "reply-signing.key").read_bytes()
    log = tmp_path / "tools.log"
    monkeypatch.setenv("PATH", pass_through_tools(tmp_path / "bin", log) + ":/usr/bin:/bin")

    dest = tmp_path / "backup"
    c = ("--config", str(config))
    assert await asyncio.to_thread(main, ["backup", str(dest), *c]) == 0
    out, err = capsys.readouterr()
    manifest = json.loads((dest / MANIFEST_NAME).read_text("utf-8"))
    assert manifest["database"]["dialect"] == "postgresql"
    assert manifest["counts"]["interventions"] == 2
    assert manifest["blobs"]["files"] == 2

    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}"')
    postgres_cluster.create_database(name)
    shutil.rmtree(data)
    assert await asyncio.to_thread(main, ["restore", str(dest), *c]) == 0
    out2, err2 = capsys.readouterr()
    assert count(url, "interventions") == 2
    assert count(url, "attachments") == 2
    assert (data / "reply-signing.key").read_bytes() == key
    blobs = LocalBlobStore(data / "blobs")
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT sha256 FROM attachments ORDER BY id").fetchall()
    assert [blobs.get(r[0]) for r in stored] == list(payloads.values())

    tools = log.read_text("utf-8")
    assert "argv: --format=custom" in tools
    assert "argv: --single-transaction" in tools
    assert f"passfile: *:*:*:*:{PASSWORD}" in tools
    assert PASSWORD not in "".join(line for line in tools.splitlines()
                                   if line.startswith("argv:"))
    assert PASSWORD not in out + err + out2 + err2
    passfiles = [line.partition(": ")[2] for line in tools.splitlines()
                 if line.startswith("passfile at: ")]
    assert passfiles
    assert not any_exists(passfiles)  # removed after each run

    assert await asyncio.to_thread(main, ["restore", str(dest), *c]) == 1
    assert "--force" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["restore", str(dest), "--force", *c]) == 0
    assert count(url, "interventions") == 2

    async with running_daemon(settings) as daemon:
        follow_up = EmailMessage()
        follow_up["From"] = "customer1@example.org"
        follow_up["To"] = SUPPORT
        follow_up["Subject"] = "Re: Boiler 1"
        follow_up["In-Reply-To"] = "<pg-backup-1@example.org>"
        follow_up.set_content("Still broken.")
        assert (await daemon.send(follow_up.as_bytes()))[0] == 250
        assert (await daemon.send(customer_mail(3, b"x")))[0] == 250
        assert await daemon.query("SELECT outcome, intervention_number FROM inbound"
                                  " WHERE id > 2 ORDER BY id") == [
            ("follow_up", 1), ("new_request", 3)]


def test_a_missing_or_too_old_pg_dump_is_named(
    tmp_path: Path, postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without pg_dump on PATH, or with one older than the server, backup exits 1 saying
    which client tools to install, and writes no backup."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    config = tmp_path / "nm.toml"
    config.write_text(config_toml(make_config(tmp_path / "data",
                                              storage={"database_url": url})), "utf-8")
    empty, old = tmp_path / "empty", tmp_path / "old"
    empty.mkdir()
    old.mkdir()
    (old / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 12.3'\n", "utf-8")
    (old / "pg_dump").chmod(0o755)
    for path, expected in ((empty, "pg_dump is not installed"),
                           (old, "pg_dump 12 cannot dump a PostgreSQL 15 server")):
        monkeypatch.setenv("PATH", str(path))
        assert main(["backup", str(tmp_path / "backup"), "--config", str(config)]) == 1
        assert expected in capsys.readouterr().err
        assert not (tmp_path / "backup" / MANIFEST_NAME).exists()


def test_a_backup_restores_only_into_its_own_kind_of_store(
    tmp_path: Path, postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str],
) -> None:
    """A SQLite backup is refused by a PostgreSQL configuration (pointing at
    migrate-store), and a PostgreSQL backup by a SQLite one; nothing is restored."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    configs = {}
    for kind, storage in (("sqlite", {}), ("postgresql", {"database_url": url})):
        configs[kind] = tmp_path / f"{kind}.toml"
        configs[kind].write_text(config_toml(make_config(tmp_path / kind, storage=storage)),
                                 "utf-8")
        assert main(["token", "create", "--name", "x", "--config", str(configs[kind])]) == 0
        assert main(["backup", str(tmp_path / f"{kind}-backup"), "--config",
                     str(configs[kind])]) == 0
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "sqlite-backup"), "--force", "--config",
                 str(configs["postgresql"])]) == 1
    assert "migrate-store" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "postgresql-backup"), "--force", "--config",
                 str(configs["sqlite"])]) == 1
    assert "PostgreSQL store" in capsys.readouterr().err
