"""`nexusmail quarantine list|show|retry`: the mails whose processing failed, and those
the loop guard held (their sender was muted: retry them once it is unmuted).

A retry runs the stored bytes through `Ingest.accept`, the same pipeline as SMTP; it
opens the store itself (beside a running daemon, whose outbox worker sends what it
queues on its next poll).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
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
    print_table,
    with_ingest,
    with_store,
)
from nexusmail.config import Settings
from nexusmail.i18n import N_, Msg, msg
from nexusmail.ingest.accept import Ingest
from nexusmail.ingest.retry import RETRYABLE as _RETRYABLE
from nexusmail.ingest.retry import RetryResult, RetryState, raw_bytes, retry_inbound
from nexusmail.storage.connections import Storage
from nexusmail.tickets import queries

MAX_HEADER_LINES = 200   # `quarantine show` prints at most this much of a header block


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add the `quarantine` command group to the CLI's parser."""
    quarantine = group(commands, "quarantine", config_opt,
                       "Look at and retry mails whose processing failed (kept, never dropped).",
                       "  nexusmail quarantine list\n  nexusmail quarantine show 17\n"
                       "  nexusmail quarantine retry 17\n  nexusmail quarantine retry --all")
    add(quarantine, "list", cmd_quarantine_list,
        "List quarantined and held mails: id, received, source, sender, subject, reason.",
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


_ROW = ("SELECT id, received_at, source, COALESCE(NULLIF(sender, ''), envelope_from), subject,"
        " reason, raw_sha256, size, message_id, envelope_to, outcome FROM inbound")


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings) -> int:
    async def fetch(store: Storage) -> list[Any]:
        async with store.read() as conn:
            cursor = await conn.execute(_ROW + " WHERE outcome IN (?, ?) ORDER BY id",
                                        _RETRYABLE)
            return list(await cursor.fetchall())

    rows = [[str(r[0]), speech().moment(r[1]), r[2], r[3] or "-", _clip(r[4] or "-", 40),
             _clip(r[5], 60)]
            for r in with_store(settings, fetch)]
    print_table([N_("ID"), N_("RECEIVED"), N_("SOURCE"), N_("SENDER"), N_("SUBJECT"),
                 N_("REASON")], rows)
    return EXIT_OK


def cmd_quarantine_show(args: argparse.Namespace, settings: Settings) -> int:
    inbound_id: int = args.id

    async def fetch(store: Storage) -> tuple[Any, bytes | None]:
        async with store.read() as conn:
            row = await (await conn.execute(_ROW + " WHERE id = ?", (inbound_id,))).fetchone()
            if row is None:
                return None, None
            raw = await queries.get_raw_message(conn, row[6])
        return row, None if raw is None else await raw_bytes(raw, settings)

    row, raw = with_store(settings, fetch)
    if row is None:
        return fail(msg("inbound mail {id} does not exist", id=inbound_id))
    say(msg("inbound mail {id}  ({outcome})", id=row[0], outcome=outcome_word(row[10])))
    for label, value in ((N_("received"), speech().moment(row[1])), (N_("source"), row[2]),
                         (N_("sender"), row[3]),
                         (N_("envelope to"), ", ".join(json.loads(row[9]))),
                         ("message-id", row[8]), (N_("subject"), row[4]),
                         (N_("size"), text(msg("{count} bytes",
                                               count=speech().number(row[7])))),
                         ("sha256", row[6])):
        print(f"{speech().label(label) + ':':<13}{value or '-'}")
    say(msg("\nreason:"))
    print("\n".join("  " + line for line in (row[5] or "-").splitlines()))
    say(msg("\nraw headers:"))
    print(raw_headers(raw) if raw is not None else "  " + text(msg("(raw bytes missing)")))
    return EXIT_OK


def raw_headers(raw: bytes) -> str:
    """The header block of `raw` as text, however broken the mail (never raises)."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0),
              default=len(raw))
    lines = raw[:end].decode("utf-8", "replace").replace("\x00", "\\0").splitlines()
    shown = [line.rstrip("\r") for line in lines[:MAX_HEADER_LINES]]
    if len(lines) > MAX_HEADER_LINES:
        shown.append(text(msg("... ({count} more header lines)",
                               count=len(lines) - MAX_HEADER_LINES)))
    return "\n".join(shown)


def cmd_quarantine_retry(args: argparse.Namespace, settings: Settings) -> int:
    wanted: list[int] = args.ids
    if bool(wanted) == bool(args.all):
        return fail(msg("give the ids of the mails to retry, or --all"), EXIT_USAGE)

    async def retry(ingest: Ingest, store: Storage) -> list[tuple[int, Retried]]:
        async with store.read() as conn:
            if args.all:
                cursor = await conn.execute("SELECT id FROM inbound WHERE outcome IN (?, ?)"
                                            " ORDER BY id", _RETRYABLE)
                ids = [int(r[0]) for r in await cursor.fetchall()]
            else:
                ids = wanted
        return [(i, await _retry_one(ingest, store, i)) for i in ids]

    results = with_ingest(settings, retry)
    if not results:
        say(msg("(no quarantined mail)"))
    for inbound_id, retried in results:
        say(msg("inbound mail {id}: {outcome}", id=inbound_id, outcome=retried.said))
    return EXIT_OK if all(retried.settled for _, retried in results) else EXIT_FAILED


@dataclass(frozen=True)
class Retried:
    """What a retry did to one mail, in the command's words: `settled` when it needs
    nothing more (it went through now, or it was not waiting for a retry)."""

    said: Msg
    settled: bool = False


async def _retry_one(ingest: Ingest, store: Storage, inbound_id: int) -> Retried:
    done = await retry_inbound(ingest, store, inbound_id)
    return Retried(_said(done), settled=done.settled)


def _said(done: RetryResult) -> Msg:
    if done.state is RetryState.MISSING:
        return msg("does not exist")
    if done.state is RetryState.NOT_WAITING:
        return msg("not quarantined (it is {outcome}); nothing done",
                   outcome=outcome_word(done.outcome))
    if done.state is RetryState.NO_BYTES:
        return msg("its raw bytes are missing; cannot retry")
    if done.state is RetryState.STORAGE_FAILED:
        return msg("not retried, storage failed: {problem}", problem=done.detail)
    if done.state is RetryState.STILL_KEPT:
        return msg("still {outcome}: {reason}", outcome=outcome_word(done.outcome),
                   reason=done.detail)
    number = f" #{done.intervention_number}" if done.intervention_number else ""
    reason = f" ({done.detail})" if done.detail else ""
    return msg("now {outcome}{number}{reason}", outcome=outcome_word(done.outcome),
               number=number, reason=reason)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


