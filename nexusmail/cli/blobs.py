"""`nexusmail blobs gc`: remove attachment files no row names, once they are old enough;
`nexusmail blobs import DIR`: put a local blobs/ tree into the configured store.

A blob is written before the commit that names it; when that commit fails (a crash, a
database refusing the transaction) the blob stays behind unnamed. The sweep leaves every
blob younger than --grace alone, since its commit may still be on its way.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from nexusmail.blobs.gc import SweepReport, sweep_orphans
from nexusmail.blobs.open import open_blob_store
from nexusmail.blobs.transfer import TransferReport, put_tree
from nexusmail.cli.language import say, speech
from nexusmail.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    AddCommand,
    AddGroup,
    fail,
    with_store,
)
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.storage.connections import Storage

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Longer than any transaction between a blob's write and its commit, by far.
DEFAULT_GRACE = "24h"


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add the `blobs` command group to the CLI's parser."""
    blobs = group(commands, "blobs", config_opt,
                  "Look after the attachment store ([blobs] url: a directory or S3).",
                  "  nexusmail blobs gc --dry-run\n  nexusmail blobs gc --grace 7d")
    gc = add(blobs, "gc", cmd_blobs_gc,
             "Remove attachment files that no stored mail or note names (left by a commit "
             "that failed after the file was written) and that are older than --grace. "
             "Safe beside running daemons.",
             "  nexusmail blobs gc --dry-run     # only count what would go\n"
             "  nexusmail blobs gc --grace 7d")
    gc.add_argument("--grace", default=DEFAULT_GRACE, metavar="AGE",
                    help="leave alone files younger than this: a number with s, m, h or d "
                         f"(default {DEFAULT_GRACE})")
    gc.add_argument("--dry-run", action="store_true",
                    help="list and count what would be removed, remove nothing")
    put = add(blobs, "import", cmd_blobs_import,
              "Put every attachment file of a local blobs directory (ab/cd/<sha256>) into "
              "the store [blobs] url names, checking each against its name: how an "
              "installation moves its attachments to S3. Files already there are left as "
              "they are, so an interrupted import is simply run again.",
              "  nexusmail blobs import /srv/nexusmail-data/blobs --config s3.toml")
    put.add_argument("source", type=Path, metavar="DIR", help="a blobs directory")


def parse_grace(text: str) -> timedelta | None:
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


def cmd_blobs_gc(args: argparse.Namespace, settings: Settings) -> int:
    grace = parse_grace(args.grace)
    if grace is None:
        return fail(msg("--grace {value!r}: use a number with s, m, h or d, e.g. 24h",
                        value=args.grace), EXIT_USAGE)
    blobs = open_blob_store(settings)
    cutoff = SystemClock().now() - grace

    async def sweep(store: Storage) -> SweepReport:
        return await sweep_orphans(store, blobs, cutoff=cutoff, dry_run=args.dry_run,
                                   progress=_progress)

    try:
        report = with_store(settings, sweep)
    finally:
        blobs.close()
    for digest in report.removed_digests:
        say(msg("would remove {digest}", digest=digest) if report.dry_run
            else msg("removed {digest}", digest=digest))
    number = speech().number
    counts = {"store": blobs.describe(), "files": number(report.scanned),
              "young": number(report.young), "grace": args.grace,
              "in_use": number(report.referenced), "removed": number(report.removed),
              "bytes": number(report.removed_bytes)}
    say(msg("{store}: {files} files, {young} younger than {grace}, {in_use} in use; would "
            "remove {removed} ({bytes} bytes)", **counts) if report.dry_run
        else msg("{store}: {files} files, {young} younger than {grace}, {in_use} in use; "
                 "removed {removed} ({bytes} bytes)", **counts))
    return EXIT_OK


def cmd_blobs_import(args: argparse.Namespace, settings: Settings) -> int:
    source: Path = args.source
    if not source.is_dir():
        return fail(msg("{path} is not a directory", path=str(source)), EXIT_USAGE)
    store = open_blob_store(settings)
    try:
        report = put_tree(source, store, progress=_import_progress)
    finally:
        store.close()
    number = speech().number
    put = msg("{store}: {files} files put ({bytes} bytes) from {path}",
              store=store.describe(), files=number(report.files), bytes=number(report.bytes),
              path=str(source))
    say(msg("{put}; {damaged} damaged files left out", put=put,
            damaged=number(report.damaged)) if report.damaged else put)
    return EXIT_FAILED if report.damaged else EXIT_OK


def _import_progress(report: TransferReport) -> None:
    say(msg("... {files} files put", files=speech().number(report.files)), file=sys.stderr)


def _progress(report: SweepReport) -> None:
    # On stderr, so the list of removed digests on stdout stays clean for a script.
    counts = {"files": speech().number(report.scanned), "removed": speech().number(report.removed)}
    say(msg("... {files} files looked at, {removed} to remove", **counts) if report.dry_run
        else msg("... {files} files looked at, {removed} removed", **counts), file=sys.stderr)
