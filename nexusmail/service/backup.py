"""Backup and restore of a data dir: the database, the attachment files, the keys.

The database is copied with SQLite's online backup API in one step, so the copy is one
consistent snapshot even while the daemon writes (WAL: the daemon's writer is never
blocked). Attachment files are copied after that snapshot: a blob is written before the
commit that refers to it, so every blob the snapshot names exists by then. Blobs are
content-addressed, so a later backup into the same directory copies only new ones.
With `[blobs] url` naming an object store (s3://…) the attachments are not copied:
they stay in the bucket, which the manifest names; keep that bucket versioned or
replicated. Blocking file I/O throughout: the CLI calls these functions outside any
event loop.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nexusmail import __version__
from nexusmail.files import (
    PRIVATE_MODE,
    copy_atomically,
    fsync_file,
    replace_durably,
    write_atomically,
)
from nexusmail.i18n import msg
from nexusmail.paths import BLOBS_DIR, DATABASE_NAME, REPLY_KEY_FILE, SESSION_KEY_FILE

MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "nexusmail.toml"
FORMAT = 1
# Secrets that live in the data dir: without the reply key, replies to assignment mails
# sent before the restore would no longer verify.
KEY_FILES = (REPLY_KEY_FILE, SESSION_KEY_FILE)
COUNTED_TABLES = ("interventions", "messages", "attachments", "inbound", "outbox",
                  "customers", "employees")


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why."""


@dataclass(frozen=True)
class BlobsLocation:
    """Where the attachment files live: a directory (None: the data dir's blobs/), or
    the object store `object_store` (s3://…), whose files a backup leaves where they are."""

    directory: Path | None = None
    object_store: str = ""

    def root(self, data_dir: Path) -> Path | None:
        """The directory to copy from or into; None for an object store."""
        if self.object_store:
            return None
        return self.directory or data_dir / BLOBS_DIR


# Where the attachments were before `[blobs] url` existed, and stay by default.
DATA_DIR_BLOBS = BlobsLocation()


@dataclass(frozen=True)
class BackupReport:
    manifest: dict[str, Any]
    blobs_copied: int


def create_backup(data_dir: Path, dest: Path, config_file: Path | None = None, *,
                  blobs: BlobsLocation = DATA_DIR_BLOBS) -> BackupReport:
    """Back `data_dir` up into `dest` (created if needed; an older backup there is updated)."""
    db = data_dir / DATABASE_NAME
    if not db.is_file():
        raise BackupError(msg("no database at {path}", path=str(db)))
    # A backup holds every customer's mail: readable by the owner only, like the data dir.
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = dest / DATABASE_NAME
    tmp = dest / f".{DATABASE_NAME}.tmp"
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        source.execute("PRAGMA busy_timeout = 5000")
        copy = sqlite3.connect(tmp)
        try:
            # pages=-1: the whole database in one step, under one read transaction.
            source.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            counts = _counts(copy)
        finally:
            copy.close()
    finally:
        source.close()
    fsync_file(tmp)
    replace_durably(tmp, target)
    files = copy_data_dir_files(data_dir, dest, config_file, blobs=blobs)
    manifest = write_manifest(dest, {"file": DATABASE_NAME, "sha256": file_sha256(target),
                                     "size": target.stat().st_size}, counts, files)
    return BackupReport(manifest, files.blobs_copied)


@dataclass(frozen=True)
class FilesCopied:
    """What a backup took from the data dir besides the database."""

    blobs_copied: int
    blob_files: int
    blob_bytes: int
    key_files: list[str]
    config_file: str | None
    object_store: str = ""  # where the attachments stay when they are not copied


def copy_data_dir_files(data_dir: Path, dest: Path, config_file: Path | None, *,
                        blobs: BlobsLocation = DATA_DIR_BLOBS) -> FilesCopied:
    """Copy the attachment files (only those `dest` lacks), the keys and the config file.
    Called after the database's snapshot: a blob is written before the commit naming it,
    so every blob the snapshot names exists by then."""
    root = blobs.root(data_dir)
    blobs_copied, blob_count, blob_bytes = (
        (0, 0, 0) if root is None else _copy_blobs(root, dest / BLOBS_DIR))
    keys = []
    for name in KEY_FILES:
        if (data_dir / name).is_file():
            _copy_private(data_dir / name, dest / name)
            keys.append(name)
    if config_file is not None:
        shutil.copyfile(config_file, dest / CONFIG_NAME)
    return FilesCopied(blobs_copied, blob_count, blob_bytes, keys,
                       CONFIG_NAME if config_file is not None else None, blobs.object_store)


def write_manifest(dest: Path, database: dict[str, Any], counts: dict[str, int],
                   files: FilesCopied) -> dict[str, Any]:
    """Write the backup's manifest (the last file written: its presence means done)."""
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "nexusmail_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "counts": counts,
        "blobs": {"files": files.blob_files, "bytes": files.blob_bytes,
                  **({"object_store": files.object_store} if files.object_store else {})},
        "key_files": files.key_files,
        "config_file": files.config_file,
    }
    write_atomically(dest / MANIFEST_NAME,
                     (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return manifest


def restore_backup(backup: Path, data_dir: Path, *, force: bool = False,
                   blobs: BlobsLocation = DATA_DIR_BLOBS) -> dict[str, Any]:
    """Verify the backup in `backup`, then restore it into `data_dir`; return its manifest.

    Refuses a data dir that already holds a database or attachments unless `force`
    (the daemon must be stopped then: its open database is replaced underneath it).
    """
    manifest = verify_backup(backup)
    db = data_dir / DATABASE_NAME
    occupied = db.exists() or holds_blobs(data_dir, blobs)
    if occupied and not force:
        raise BackupError(msg("{path} already holds a nexusmail store; use --force to "
                              "replace it (stop the daemon first)", path=str(data_dir)))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = data_dir / f".{DATABASE_NAME}.restore"
    shutil.copyfile(backup / DATABASE_NAME, tmp)
    fsync_file(tmp)
    # A WAL left by the replaced database would be replayed over the restored one.
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    replace_durably(tmp, db)
    restore_data_dir_files(backup, data_dir, manifest, blobs=blobs)
    return manifest


def holds_blobs(data_dir: Path, blobs: BlobsLocation = DATA_DIR_BLOBS) -> bool:
    """Whether the attachment directory already has files (a store lives there); an
    object store is never refused for it (its objects are named by their content)."""
    root = blobs.root(data_dir)
    return root is not None and root.is_dir() and any(root.iterdir())


def restore_data_dir_files(backup: Path, data_dir: Path, manifest: dict[str, Any], *,
                           blobs: BlobsLocation = DATA_DIR_BLOBS) -> None:
    """Put the backup's attachment files and keys into the data dir (the files into
    their directory; for an object store the caller puts them, see blobs.transfer)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    root = blobs.root(data_dir)
    if root is not None:
        _copy_blobs(backup / BLOBS_DIR, root)
    for name in manifest.get("key_files", []):
        _copy_private(backup / name, data_dir / name)


def verify_backup(backup: Path) -> dict[str, Any]:
    """The manifest, once the database and every attachment file match it."""
    manifest = read_manifest(backup)
    if manifest["database"].get("dialect", "sqlite") != "sqlite":
        raise BackupError(msg("{path} is a backup of a PostgreSQL store: restore it with a "
                              "configuration whose [storage] database_url names a "
                              "PostgreSQL database", path=str(backup)))
    db = backup / DATABASE_NAME
    if not db.is_file() or file_sha256(db) != manifest["database"]["sha256"]:
        raise BackupError(msg("{path} is missing or does not match the manifest's sha256",
                              path=str(db)))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        counts = _counts(conn)
    finally:
        conn.close()
    if check != "ok":
        raise BackupError(msg("{path} fails the integrity check: {problem}", path=str(db),
                              problem=str(check)))
    if counts != manifest["counts"]:
        raise BackupError(msg("row counts {counts} differ from the manifest's {expected}",
                              counts=str(counts), expected=str(manifest["counts"])))
    verify_data_dir_files(backup, manifest)
    return manifest


def read_manifest(backup: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((backup / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(msg("no readable {name} in {path}: {problem}", name=MANIFEST_NAME,
                              path=str(backup), problem=str(exc))) from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(msg("unknown backup format {format!r}",
                              format=manifest.get("format")))
    return manifest


def verify_data_dir_files(backup: Path, manifest: dict[str, Any]) -> None:
    """BackupError unless every attachment file matches its name and the keys are there."""
    files = 0
    for path in _blob_files(backup / BLOBS_DIR):
        if file_sha256(path) != path.name:
            raise BackupError(msg("attachment file {path} does not match its name (damaged)",
                                  path=str(path)))
        files += 1
    if files < manifest["blobs"]["files"]:
        raise BackupError(msg("{expected} attachment files expected, {found} found",
                              expected=manifest["blobs"]["files"], found=files))
    for name in manifest.get("key_files", []):
        if not (backup / name).is_file():
            raise BackupError(msg("key file {name} is missing from the backup", name=name))


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _counts(conn: sqlite3.Connection) -> dict[str, int]:
    present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # noqa: S608
            for t in COUNTED_TABLES if t in present}


def _blob_files(root: Path) -> Iterator[Path]:
    """The attachment files under `root` (blobs/ab/cd/<sha256>), not temporary ones."""
    if not root.is_dir():
        return
    for path in sorted(root.glob("??/??/*")):
        if len(path.name) == 64 and path.is_file():
            yield path


def _copy_blobs(source: Path, dest: Path) -> tuple[int, int, int]:
    """Copy the files `dest` lacks; return (copied, files, bytes) of the whole tree."""
    copied = files = size = 0
    for path in _blob_files(source):
        relative = path.relative_to(source)
        target = dest / relative
        files += 1
        size += path.stat().st_size
        if target.exists():
            continue  # content-addressed: same name, same bytes
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        copy_atomically(path, target, mode=PRIVATE_MODE)
        copied += 1
    return copied, files, size


def _copy_private(source: Path, target: Path) -> None:
    """Copy a secret file, readable by its owner only."""
    write_atomically(target, source.read_bytes(), mode=PRIVATE_MODE)
