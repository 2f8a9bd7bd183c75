"""Backup and restore of a store on PostgreSQL: pg_dump / pg_restore, plus the data dir's
attachment files and keys, under the same manifest as a SQLite backup.

The dump and the manifest's row counts come from one snapshot: a repeatable-read
transaction exports it (pg_export_snapshot), counts in it, and pg_dump reads through it
(--snapshot). Attachment files are copied after it, as for SQLite: a blob is written
before the commit that names it. The password goes to pg_dump and pg_restore in a
private passfile named by PGPASSFILE, never on their command line or in a log line.
Blocking throughout: the CLI calls these outside any event loop.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from nexusmail.files import fsync_file, replace_durably
from nexusmail.i18n import msg
from nexusmail.service.backup import (
    COUNTED_TABLES,
    DATA_DIR_BLOBS,
    BackupError,
    BackupReport,
    BlobsLocation,
    copy_data_dir_files,
    file_sha256,
    holds_blobs,
    read_manifest,
    restore_data_dir_files,
    verify_data_dir_files,
    write_manifest,
)

DUMP_NAME = "nexusmail.pgdump"
CONNECT_TIMEOUT_S = 10
# pg_dump refuses a server newer than itself; pg_restore cannot read an archive from a
# newer pg_dump. Saying which version to install beats their own error.
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


def create_pg_backup(url: str, password: str | None, data_dir: Path, dest: Path,
                     config_file: Path | None = None, *,
                     blobs: BlobsLocation = DATA_DIR_BLOBS) -> BackupReport:
    """Dump the database at `url` into `dest` (custom format) and copy the data dir's
    files beside it; an older backup there is updated."""
    pg_dump = _tool("pg_dump")
    with _connect(url, password) as conn:
        server = _server_major(conn)
        tool = _tool_major(pg_dump)
        if tool < server:
            raise BackupError(msg("pg_dump {tool} cannot dump a PostgreSQL {server} server: "
                                  "install PostgreSQL {server}'s client tools (or newer)",
                                  tool=tool, server=server))
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = dest / f".{DUMP_NAME}.tmp"
        tmp.unlink(missing_ok=True)
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            snapshot = _one(conn, "SELECT pg_export_snapshot()")
            counts = _counts(conn)
            _run([pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot}",
                  f"--file={tmp}", f"--dbname={url}"], password, "pg_dump")
    fsync_file(tmp)
    target = dest / DUMP_NAME
    replace_durably(tmp, target)
    files = copy_data_dir_files(data_dir, dest, config_file, blobs=blobs)
    manifest = write_manifest(dest, {
        "dialect": "postgresql", "file": DUMP_NAME, "sha256": file_sha256(target),
        "size": target.stat().st_size, "server_major": server, "pg_dump_major": tool,
    }, counts, files)
    return BackupReport(manifest, files.blobs_copied)


def restore_pg_backup(backup: Path, url: str, password: str | None, data_dir: Path, *,
                      force: bool = False,
                      blobs: BlobsLocation = DATA_DIR_BLOBS) -> dict[str, Any]:
    """Verify the backup, restore its dump into the database at `url` (one transaction)
    and its files into `data_dir`; return its manifest.

    Refuses a database that already holds tables, or a data dir holding attachment
    files, unless `force` (stop the daemon first): then the dump's objects replace
    those of the same name."""
    manifest = read_manifest(backup)
    database = manifest["database"]
    if database.get("dialect") != "postgresql":
        raise BackupError(msg("{path} is a backup of a SQLite store: restore it with a SQLite "
                              "configuration, then move it with `nexusmail migrate-store`",
                              path=str(backup)))
    dump = backup / DUMP_NAME
    if not dump.is_file() or file_sha256(dump) != database["sha256"]:
        raise BackupError(msg("{path} is missing or does not match the manifest's sha256",
                              path=str(dump)))
    verify_data_dir_files(backup, manifest)
    pg_restore = _tool("pg_restore")
    tool = _tool_major(pg_restore)
    if tool < database["pg_dump_major"]:
        raise BackupError(msg("pg_restore {tool} cannot read a dump made by pg_dump "
                              "{version}: install that version's client tools", tool=tool,
                              version=database["pg_dump_major"]))
    with _connect(url, password) as conn:
        conn.autocommit = True
        tables = _one(conn, "SELECT count(*) FROM information_schema.tables"
                            " WHERE table_schema = current_schema()")
        if (tables or holds_blobs(data_dir, blobs)) and not force:
            raise BackupError(msg("{url} or {path} already holds a nexusmail store; use "
                                  "--force to replace it (stop the daemon first)", url=url,
                                  path=str(data_dir)))
        # One transaction: a failing restore leaves the database as it was. Objects are
        # made owned by the URL's user (the one the daemon connects as), whoever owned
        # them where the dump was taken.
        _run([pg_restore, "--single-transaction", "--no-owner", "--no-privileges",
              "--no-comments", "--no-password", *(["--clean", "--if-exists"] if tables else []),
              f"--dbname={url}", str(dump)], password, "pg_restore")
        counts = _counts(conn)
    if counts != manifest["counts"]:
        raise BackupError(msg("restored, but the row counts {counts} differ from the "
                              "manifest's {expected}", counts=str(counts),
                              expected=str(manifest["counts"])))
    restore_data_dir_files(backup, data_dir, manifest, blobs=blobs)
    return manifest


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(msg("{name} is not installed (or not on PATH): a PostgreSQL store "
                              "is backed up with PostgreSQL's client tools (Debian: "
                              "postgresql-client), of the server's major version or newer",
                              name=name))
    return found


def _tool_major(path: str) -> int:
    result = subprocess.run([path, "--version"], capture_output=True, text=True,  # noqa: S603
                            timeout=30, check=False)
    found = _VERSION.search(result.stdout)
    if result.returncode != 0 or found is None:
        raise BackupError(msg("cannot tell the version of {path}: {output}", path=str(path),
                              output=result.stdout or result.stderr))
    return int(found.group(1))


def _server_major(conn: psycopg.Connection[Any]) -> int:
    return conn.info.server_version // 10000


def _connect(url: str, password: str | None) -> psycopg.Connection[Any]:
    extra: dict[str, Any] = {"password": password} if password else {}
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, **extra)
    except psycopg.Error as exc:
        raise BackupError(msg("cannot connect to {url}: {problem}", url=url,
                              problem=str(exc))) from exc


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts = {}
    for table in COUNTED_TABLES:
        if _one(conn, "SELECT to_regclass(%s)", (table,)) is None:
            continue
        counts[table] = int(_one(conn, sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table))))
    return counts


def _one(conn: psycopg.Connection[Any], query: str | sql.Composed,
         params: tuple[Any, ...] = ()) -> Any:
    """The single value a query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, "a query of one value returned no row"
    return row[0]


def _run(argv: list[str], password: str | None, what: str) -> None:
    with _password_environment(password) as env:
        result = subprocess.run(argv, env=env, capture_output=True, text=True,  # noqa: S603
                                check=False)
    if result.returncode != 0:
        raise BackupError(msg("{what} failed: {problem}", what=what,
                              problem=result.stderr.strip() or result.returncode))


@contextmanager
def _password_environment(password: str | None) -> Iterator[dict[str, str]]:
    """The environment for pg_dump/pg_restore: with a password, PGPASSFILE naming a
    private passfile that exists only while they run (an environment variable holding
    the password itself can be read in /proc by the same user's other processes; a
    command-line argument by anyone). Without one, libpq's own PGPASSWORD or ~/.pgpass."""
    env = dict(os.environ)
    if password is None:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="nexusmail-pgpass-") as folder:
        passfile = Path(folder) / "pgpass"
        escaped = password.replace("\\", "\\\\").replace(":", "\\:")
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"*:*:*:*:{escaped}\n")
        env["PGPASSFILE"] = str(passfile)
        env.pop("PGPASSWORD", None)
        yield env
