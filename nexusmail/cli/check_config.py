"""`nexusmail check-config`: the effective settings (secrets masked), what will likely
misbehave, and what every IMAP account holds, looked at without changing anything."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from nexusmail.blobs.open import blobs_location
from nexusmail.cli.language import say, speech, text
from nexusmail.cli.support import EXIT_FAILED, EXIT_OK
from nexusmail.config import Settings
from nexusmail.config_warnings import config_warnings
from nexusmail.i18n import msg
from nexusmail.storage.target import database_target

if TYPE_CHECKING:
    from nexusmail.ingest.imap.poller import AccountReport


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    source = args.config or text(msg("embedded defaults"))
    say(msg("# configuration OK ({source}; secrets masked)", source=source))
    for warning in config_warnings(settings):
        say(msg("warning: {key}: {problem}", key=warning.key, problem=warning.problem),
            file=sys.stderr)
    say(msg("# database: {where}", where=database_target(settings).describe()))
    say(msg("# attachments: {where}", where=str(blobs_location(settings))))
    # model_dump in JSON mode masks SecretStr; JSON scalars and lists read as TOML.
    for section, values in settings.model_dump(mode="json").items():
        print(f"\n[{section}]")
        for key, value in values.items():
            if value is None:
                say(msg("# {key} is not set", key=key))
            else:
                print(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    if not settings.imap.accounts:
        return EXIT_OK
    from nexusmail.ingest.imap.poller import check_accounts  # imapclient only when needed

    say(msg("\n# IMAP accounts (logged in and looked; nothing changed)"))
    reports = asyncio.run(check_accounts(settings))
    for report in reports:
        print("\n".join("# " + line for line in account_lines(report)))
    return EXIT_OK if all(report.ok for report in reports) else EXIT_FAILED


def account_lines(report: AccountReport) -> list[str]:
    """What one account showed: the login, the server's capabilities, the folders."""
    state = (text(msg("OK")) if report.ok
             else text(msg("FAILED: {error}", error=report.error or "")))
    out = [f"{report.name} ({report.host}): {state}"]
    if report.capabilities:
        out.append(text(msg("  capabilities: {names}", names=" ".join(report.capabilities))))
    if report.ok:
        found = (msg("{count} messages", count=speech().number(report.messages or 0))
                 if report.folder_exists else msg("does not exist"))
        out.append(text(msg("  folder {name!r}: {found}", name=report.folder, found=found)))
        if report.move_to is not None:
            there = (msg("exists") if report.move_to_exists
                     else msg("missing (created at the first move)"))
            out.append(text(msg("  move_to {name!r}: {there}", name=report.move_to,
                                there=there)))
    return out
