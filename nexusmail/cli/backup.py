"""`nexusmail backup` and `restore`: file work for SQLite (nexusmail.service.backup),
pg_dump and pg_restore for PostgreSQL (nexusmail.service.pg_backup)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nexusmail.blobs.open import is_s3, local_blobs_root, open_blob_store
from nexusmail.blobs.transfer import put_tree
from nexusmail.cli.language import say, speech, text
from nexusmail.cli.support import EXIT_OK, AddCommand, AddGroup, refuse
from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.paths import BLOBS_DIR
from nexusmail.service.backup import BackupError, BlobsLocation, create_backup, restore_backup
from nexusmail.service.pg_backup import create_pg_backup, restore_pg_backup
from nexusmail.storage.target import database_target


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add `backup` and `restore` to the CLI's parser."""
    backup = add(commands, "backup", cmd_backup,
                 "Back the store up into DEST_DIR while the daemon runs: a consistent "
                 "online copy of the database (on PostgreSQL a pg_dump custom-format "
                 "dump; its client tools must be installed), the attachment files "
                 "(only those missing from DEST_DIR), the data dir's keys, the --config "
                 "file, and a manifest "
                 "with counts and the database's sha256. Keep DEST_DIR private: it holds "
                 "customer mail and secrets.",
                 "  nexusmail backup /var/backups/nexusmail --config /etc/nexusmail/nm.toml\n"
                 "  nexusmail backup \"backups/$(date +%F)\"")
    backup.add_argument("dest", type=Path, metavar="DEST_DIR",
                        help="the backup directory (created; an older backup is updated)")
    restore = add(commands, "restore", cmd_restore,
                  "Verify a backup against its manifest and restore it into [storage] "
                  "data_dir (and, for a PostgreSQL backup, with pg_restore into the "
                  "database_url's database). Refuses a store that already holds data "
                  "unless --force (stop the daemon first). The backed-up config file is "
                  "not put anywhere; its copy is BACKUP_DIR/nexusmail.toml.",
                  "  nexusmail restore /var/backups/nexusmail --config /etc/nexusmail/nm.toml\n"
                  "  nexusmail restore backups/2026-03-01 --force")
    restore.add_argument("backup", type=Path, metavar="BACKUP_DIR",
                         help="a directory written by `nexusmail backup`")
    restore.add_argument("--force", action="store_true",
                         help="replace the store already in the data dir")


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    config = Path(args.config) if getattr(args, "config", None) else None
    target = database_target(settings)
    data_dir = settings.storage.data_dir
    blobs = blobs_location(settings)
    try:
        if target.dialect == "postgresql":
            report = create_pg_backup(target.url, target.password, data_dir, args.dest, config,
                                      blobs=blobs)
        else:
            report = create_backup(data_dir, args.dest, config, blobs=blobs)
    except BackupError as exc:
        return refuse(exc)
    m = report.manifest
    where = (text(msg("{database} and {data_dir}", database=target.url, data_dir=str(data_dir)))
             if target.dialect == "postgresql" else str(data_dir))
    say(msg("Backed up {where} into {dest}: {counts}; {files} attachment files ({new} new); "
            "database sha256 {sha256}.", where=where, dest=str(args.dest),
            counts=_counts(m["counts"]), files=speech().number(m["blobs"]["files"]),
            new=speech().number(report.blobs_copied), sha256=m["database"]["sha256"]))
    if blobs.object_store:
        say(msg("The attachments stay in {bucket}, not in this backup: keep that bucket "
                "versioned or replicated.", bucket=blobs.object_store))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    target = database_target(settings)
    blobs = blobs_location(settings)
    try:
        if target.dialect == "postgresql":
            manifest = restore_pg_backup(args.backup, target.url, target.password,
                                         settings.storage.data_dir, force=args.force,
                                         blobs=blobs)
        else:
            manifest = restore_backup(args.backup, settings.storage.data_dir, force=args.force,
                                      blobs=blobs)
    except BackupError as exc:
        return refuse(exc)
    if blobs.object_store and manifest["blobs"]["files"]:
        # A backup of local files restored onto an S3 store: the files go to the bucket.
        store = open_blob_store(settings)
        try:
            put_tree(args.backup / BLOBS_DIR, store)
        finally:
            store.close()
    where = settings.storage.data_dir.as_posix()
    if target.dialect == "postgresql":
        where = text(msg("{database} and {data_dir}", database=target.url, data_dir=where))
    say(msg("Restored the backup of {when} into {where}: {counts}; {files} attachment files.",
            when=speech().moment(manifest["created_at"]), where=where,
            counts=_counts(manifest["counts"]),
            files=speech().number(manifest["blobs"]["files"])))
    return EXIT_OK


def _counts(counts: dict[str, int]) -> str:
    """Rows per table: "12 interventions, 40 messages" (as the store names its tables)."""
    return ", ".join(f"{speech().number(n)} {table}" for table, n in counts.items())


def blobs_location(settings: Settings) -> BlobsLocation:
    """Where `[blobs] url` keeps the attachments, as backup and restore need it."""
    if is_s3(settings):
        return BlobsLocation(object_store=settings.blobs.url)
    return BlobsLocation(directory=local_blobs_root(settings))
