"""`nexusmail import mbox`: old mail brought in through the same pipeline as SMTP."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nexusmail.cli.language import say, speech, text
from nexusmail.cli.outcomes import outcome_word
from nexusmail.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    AddCommand,
    AddGroup,
    fail,
    refuse,
    with_ingest,
)
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.i18n import msg
from nexusmail.ingest.accept import Ingest
from nexusmail.ingest.mbox_import import (
    MailDateClock,
    NotAnMbox,
    ProgressBar,
    import_messages,
    open_mbox,
)
from nexusmail.storage.connections import Storage


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> Any:
    """Add the `import` command group to the CLI's parser; return the group, to which
    the spreadsheet imports add their commands."""
    importer = group(commands, "import", config_opt,
                     "Bring in old mail, and the customer archive from spreadsheets.",
                     "  nexusmail import mbox old-support.mbox\n"
                     "  nexusmail import customers clienti.csv --dry-run")
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
    return importer


def cmd_import_mbox(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.is_file():
        return fail(msg("{path} is not a file", path=str(path)), EXIT_USAGE)
    source = f"import:{args.source or path.name}"
    try:
        total, messages = open_mbox(path)
    except NotAnMbox as exc:
        return refuse(exc)
    progress = ProgressBar(total, label=text(msg("mail")), words=text)
    clock = MailDateClock(SystemClock())

    async def run(ingest: Ingest, store: Storage) -> Any:
        return await import_messages(ingest, messages(), source=source, progress=progress,
                                     clock=clock, closed=args.closed)

    summary = with_ingest(settings, run, clock=clock, create=True)
    number = speech().number
    counts = ", ".join(text(msg("{count} {outcome}", count=number(n),
                                outcome=outcome_word(kind)))
                       for kind, n in sorted(summary.outcomes.items()))
    say(msg("Imported {path} as {source}: {total} mails ({counts}).", path=str(path),
            source=source, total=number(total), counts=counts or text(msg("none"))))
    for index, reason in summary.failed[:20]:
        say(msg("  mail {index}: not imported: {reason}", index=index, reason=reason),
            file=sys.stderr)
    if summary.failed:
        say(msg("Run the import again to bring in the mails that failed."), file=sys.stderr)
    return EXIT_FAILED if summary.failed else EXIT_OK
