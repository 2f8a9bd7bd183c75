"""`nexusmail backup` and `restore`: plain file work (nexusmail.service.backup)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nexusmail.cli.support import EXIT_OK, AddCommand, AddGroup, fail
from nexusmail.config import Settings
from nexusmail.service.backup import BackupError, create_backup, restore_backup


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add `backup` and `restore` to the CLI's parser."""
    backup = add(commands, "backup", cmd_backup,
                 "Back the store up into DEST_DIR while the daemon runs: a consistent "
                 "online copy of the database, the attachment files (only those missing "
                 "from DEST_DIR), the data dir's keys, the --config file, and a manifest "
                 "with counts and the database's sha256. Keep DEST_DIR private: it holds "
                 "customer mail and secrets.",
                 "  nexusmail backup /var/backups/nexusmail --config /etc/nexusmail/nm.toml\n"
                 "  nexusmail backup \"backups/$(date +%F)\"")
    backup.add_argument("dest", type=Path, metavar="DEST_DIR",
                        help="the backup directory (created; an older backup is updated)")
    restore = add(commands, "restore", cmd_restore,
                  "Verify a backup against its manifest and restore it into [storage] "
                  "data_dir. Refuses a data dir that already holds a store unless --force "
                  "(stop the daemon first). The backed-up config file is not put anywhere; "
                  "its copy is BACKUP_DIR/nexusmail.toml.",
                  "  nexusmail restore /var/backups/nexusmail --config /etc/nexusmail/nm.toml\n"
                  "  nexusmail restore backups/2026-03-01 --force")
    restore.add_argument("backup", type=Path, metavar="BACKUP_DIR",
                         help="a directory written by `nexusmail backup`")
    restore.add_argument("--force", action="store_true",
                         help="replace the store already in the data dir")


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    config = Path(args.config) if getattr(args, "config", None) else None
    try:
        report = create_backup(settings.storage.data_dir, args.dest, config)
    except BackupError as exc:
        return fail(str(exc))
    m = report.manifest
    counts = ", ".join(f"{n} {table}" for table, n in m["counts"].items())
    print(f"Backed up {settings.storage.data_dir} into {args.dest}: {counts}; "
          f"{m['blobs']['files']} attachment files ({report.blobs_copied} new); "
          f"database sha256 {m['database']['sha256']}.")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        manifest = restore_backup(args.backup, settings.storage.data_dir, force=args.force)
    except BackupError as exc:
        return fail(str(exc))
    counts = ", ".join(f"{n} {table}" for table, n in manifest["counts"].items())
    print(f"Restored the backup of {manifest['created_at']} into "
          f"{settings.storage.data_dir}: {counts}; {manifest['blobs']['files']} attachment "
          "files.")
    return EXIT_OK
