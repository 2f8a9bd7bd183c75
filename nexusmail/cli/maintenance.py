"""Operator tooling: `nexusmail quarantine list|show|retry`, `import mbox`, `backup`, `restore`.

Quarantine retries and imports run the stored or read bytes through `Ingest.accept`,
the same pipeline as SMTP; they open the store themselves (beside a running daemon,
whose outbox worker sends what they queue on its next poll). Backup and restore are
plain file work (nexusmail.service.backup).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from nexusmail.cli.support import print_table, require_store, with_store
from nexusmail.clock import Clock, SystemClock
from nexusmail.config import Settings
from nexusmail.ingest.accept import Envelope, Ingest, TemporaryFailure
from nexusmail.ingest.mbox_import import (
    MailDateClock,
    NotAnMbox,
    ProgressBar,
    import_messages,
    open_mbox,
)
from nexusmail.paths import blobs_path, database_path
from nexusmail.service.backup import BackupError, create_backup, restore_backup
from nexusmail.tickets.blobs import BlobStore
from nexusmail.tickets.models import Outcome
from nexusmail.tickets.reply_tokens import load_reply_keys
from nexusmail.tickets.store import Store

T = TypeVar("T")
Command = Callable[[argparse.Namespace, Settings], int]
AddCommand = Callable[[Any, str, Command, str, str], argparse.ArgumentParser]
AddGroup = Callable[[Any, str, argparse.ArgumentParser, str, str], Any]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_HEADER_LINES = 200   # `quarantine show` prints at most this much of a header block


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add `quarantine`, `import`, `backup` and `restore` to the CLI's parser."""
    quarantine = group(commands, "quarantine", config_opt,
                       "Look at and retry mails whose processing failed (kept, never dropped).",
                       "  nexusmail quarantine list\n  nexusmail quarantine show 17\n"
                       "  nexusmail quarantine retry 17\n  nexusmail quarantine retry --all")
    add(quarantine, "list", cmd_quarantine_list,
        "List quarantined mails: id, received, source, sender, subject, reason.",
        "  nexusmail quarantine list\n  nexusmail quarantine list --config nexusmail.toml")
    show = add(quarantine, "show", cmd_quarantine_show,
               "Print a quarantined mail: its details, the reason and its raw headers.",
               "  nexusmail quarantine show 17")
    show.add_argument("id", type=int, help="the mail's id, as `quarantine list` shows it")
    retry = add(quarantine, "retry", cmd_quarantine_retry,
                "Run quarantined mails through ingest again (the same pipeline as SMTP). "
                "A mail that still fails stays quarantined with the new reason; retrying "
                "a mail that is no longer quarantined does nothing.",
                "  nexusmail quarantine retry 17\n  nexusmail quarantine retry 17 18 21\n"
                "  nexusmail quarantine retry --all   # e.g. after upgrading past a fix")
    retry.add_argument("ids", type=int, nargs="*", metavar="ID",
                       help="the mails' ids, as `quarantine list` shows them")
    retry.add_argument("--all", action="store_true", help="every quarantined mail")

    importer = group(commands, "import", config_opt, "Bring in old mail.",
                     "  nexusmail import mbox old-support.mbox")
    mbox = add(importer, "mbox", cmd_import_mbox,
               "Import an mbox file through the same ingest pipeline as SMTP, as history: "
               "cases it opens get no acknowledgement, each mail keeps its own date. Running it "
               "again imports nothing new. "
               "A progress bar goes to stderr; the outcomes are printed at the end.",
               "  nexusmail import mbox support-2025.mbox\n"
               "  nexusmail import mbox Inbox --source thunderbird-inbox\n"
               "  nexusmail import mbox support-2019.mbox --closed\n"
               "  nexusmail import mbox big.mbox 2>import-progress.log")
    mbox.add_argument("file", type=Path, help="the mbox file (read one message at a time)")
    mbox.add_argument("--source", metavar="NAME",
                      help="recorded as the source 'import:NAME' (default: the file's name)")
    mbox.add_argument("--closed", action="store_true",
                      help="close the cases the import opens, each on the date of its last "
                           "mail (old history, not open work)")

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


# --- quarantine -----------------------------------------------------------------------

_ROW = ("SELECT id, received_at, source, COALESCE(NULLIF(sender, ''), envelope_from), subject,"
        " reason, raw_sha256, size, message_id, envelope_to, outcome FROM inbound")


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    async def fetch(store: Store) -> list[Any]:
        async with store.read() as conn:
            cursor = await conn.execute(_ROW + " WHERE outcome = ? ORDER BY id",
                                        (Outcome.QUARANTINED,))
            return list(await cursor.fetchall())

    rows = [[str(r[0]), r[1], r[2], r[3] or "-", _clip(r[4] or "-", 40), _clip(r[5], 60)]
            for r in with_store(settings, fetch)]
    print_table(["ID", "RECEIVED", "SOURCE", "SENDER", "SUBJECT", "REASON"], rows)
    return EXIT_OK


def cmd_quarantine_show(args: argparse.Namespace, settings: Settings) -> int:
    inbound_id: int = args.id

    async def fetch(store: Store) -> tuple[Any, bytes | None]:
        async with store.read() as conn:
            row = await (await conn.execute(_ROW + " WHERE id = ?", (inbound_id,))).fetchone()
            if row is None:
                return None, None
            raw = await (await conn.execute("SELECT data FROM raw_messages WHERE sha256 = ?",
                                            (row[6],))).fetchone()
            return row, None if raw is None else bytes(raw[0])

    row, raw = with_store(settings, fetch)
    if row is None:
        print(f"nexusmail: inbound mail {inbound_id} does not exist", file=sys.stderr)
        return EXIT_FAILED
    print(f"inbound mail {row[0]}  ({row[10]})")
    for label, value in (("received", row[1]), ("source", row[2]), ("sender", row[3]),
                         ("envelope to", ", ".join(json.loads(row[9]))),
                         ("message-id", row[8]), ("subject", row[4]),
                         ("size", f"{row[7]} bytes"), ("sha256", row[6])):
        print(f"{label + ':':<13}{value or '-'}")
    print("\nreason:")
    print("\n".join("  " + line for line in (row[5] or "-").splitlines()))
    print("\nraw headers:")
    print(raw_headers(raw) if raw is not None else "  (raw bytes missing)")
    return EXIT_OK


def raw_headers(raw: bytes) -> str:
    """The header block of `raw` as text, however broken the mail (never raises)."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0),
              default=len(raw))
    lines = raw[:end].decode("utf-8", "replace").replace("\x00", "\\0").splitlines()
    shown = [line.rstrip("\r") for line in lines[:MAX_HEADER_LINES]]
    if len(lines) > MAX_HEADER_LINES:
        shown.append(f"... ({len(lines) - MAX_HEADER_LINES} more header lines)")
    return "\n".join(shown)


def cmd_quarantine_retry(args: argparse.Namespace, settings: Settings) -> int:
    wanted: list[int] = args.ids
    if bool(wanted) == bool(args.all):
        print("nexusmail: give the ids of the mails to retry, or --all", file=sys.stderr)
        return EXIT_USAGE

    async def retry(ingest: Ingest, store: Store) -> list[tuple[int, str]]:
        async with store.read() as conn:
            if args.all:
                cursor = await conn.execute("SELECT id FROM inbound WHERE outcome = ?"
                                            " ORDER BY id", (Outcome.QUARANTINED,))
                ids = [int(r[0]) for r in await cursor.fetchall()]
            else:
                ids = wanted
        return [(i, await _retry_one(ingest, store, i)) for i in ids]

    results = _with_ingest(settings, retry)
    if not results:
        print("(no quarantined mail)")
    for inbound_id, line in results:
        print(f"inbound mail {inbound_id}: {line}")
    still = [line for _, line in results if not line.startswith(("now ", "not quarantined"))]
    return EXIT_FAILED if still else EXIT_OK


async def _retry_one(ingest: Ingest, store: Store, inbound_id: int) -> str:
    async with store.read() as conn:
        row = await (await conn.execute(
            "SELECT i.outcome, i.source, i.envelope_from, i.envelope_to, r.data FROM inbound i"
            " LEFT JOIN raw_messages r ON r.sha256 = i.raw_sha256 WHERE i.id = ?",
            (inbound_id,))).fetchone()
    if row is None:
        return "does not exist"
    if row[0] != Outcome.QUARANTINED:
        return f"not quarantined (it is {row[0]}); nothing done"
    if row[4] is None:
        return "its raw bytes are missing; cannot retry"
    envelope = Envelope(row[2] or None, tuple(json.loads(row[3])))
    try:
        result = await ingest.accept(bytes(row[4]), envelope, row[1], retry_of=inbound_id)
    except TemporaryFailure as exc:
        return f"not retried, storage failed: {exc}"
    if result.outcome is Outcome.QUARANTINED:
        return f"still quarantined: {result.reason}"
    number = f" #{result.intervention_number}" if result.intervention_number else ""
    reason = f" ({result.reason})" if result.reason else ""
    return f"now {result.outcome}{number}{reason}"


# --- import ---------------------------------------------------------------------------

def cmd_import_mbox(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"nexusmail: {path} is not a file", file=sys.stderr)
        return EXIT_USAGE
    source = f"import:{args.source or path.name}"
    try:
        total, messages = open_mbox(path)
    except NotAnMbox as exc:
        print(f"nexusmail: {exc}", file=sys.stderr)
        return EXIT_FAILED
    progress = ProgressBar(total)
    clock = MailDateClock(SystemClock())

    async def run(ingest: Ingest, store: Store) -> Any:
        return await import_messages(ingest, messages(), source=source, progress=progress,
                                     clock=clock, closed=args.closed)

    summary = _with_ingest(settings, run, clock=clock, create=True)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.outcomes.items()))
    print(f"Imported {path} as {source}: {total} mails ({counts or 'none'}).")
    for index, reason in summary.failed[:20]:
        print(f"  mail {index}: not imported: {reason}", file=sys.stderr)
    if summary.failed:
        print("Run the import again to bring in the mails that failed.", file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK


# --- backup / restore -----------------------------------------------------------------

def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    config = Path(args.config) if getattr(args, "config", None) else None
    try:
        report = create_backup(settings.storage.data_dir, args.dest, config)
    except BackupError as exc:
        print(f"nexusmail: {exc}", file=sys.stderr)
        return EXIT_FAILED
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
        print(f"nexusmail: {exc}", file=sys.stderr)
        return EXIT_FAILED
    counts = ", ".join(f"{n} {table}" for table, n in manifest["counts"].items())
    print(f"Restored the backup of {manifest['created_at']} into "
          f"{settings.storage.data_dir}: {counts}; {manifest['blobs']['files']} attachment "
          "files.")
    return EXIT_OK


# --- helpers --------------------------------------------------------------------------


def _with_ingest(settings: Settings, fn: Callable[[Ingest, Store], Awaitable[T]], *,
                 clock: Clock | None = None, create: bool = False) -> T:
    """Run `fn` with an Ingest built as the daemon builds it (parsing in this process);
    only an import (`create`) may start a new, empty store."""
    if not create:
        require_store(settings)
    keys = load_reply_keys(settings)  # blocking file read, before the loop runs

    async def run() -> T:
        async with Store(database_path(settings)) as store:
            ingest = Ingest(store, BlobStore(blobs_path(settings)), settings,
                            clock or SystemClock(), reply_keys=keys)
            return await fn(ingest, store)

    return asyncio.run(run())


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


