"""IMAP collection: every configured account feeds `Ingest.accept`, like SMTP does.

Each account runs its own loop (ingest.imap_account) whose blocking imapclient calls
happen in that account's own thread, so the event loop never waits on a socket.
`check_accounts` is the read-only probe behind `nexusmail check-config`.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from dataclasses import dataclass
from typing import Any

from imapclient.exceptions import IMAPClientError

from nexusmail.clock import Clock
from nexusmail.config import ImapAccount, Settings
from nexusmail.ingest.accept import Ingest
from nexusmail.ingest.imap.account import AccountCollector
from nexusmail.ingest.imap.session import CollectError, ImapSession, describe_error
from nexusmail.ingest.imap.share import FairShare, LiveDaemons


class ImapCollector:
    def __init__(self, settings: Settings, ingest: Ingest, clock: Clock, *,
                 owner: str | None = None, live_daemons: LiveDaemons | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ingest = ingest
        self.clock = clock
        # Who holds the folders' leases: the daemon's incarnation id, else a fresh random
        # one; never the host name (two daemons on one host, or a restarted one, are
        # not the same holder). A released lease is taken again at once.
        self.owner = owner or uuid.uuid4().hex
        self.live_daemons = live_daemons
        share = FairShare(len(settings.imap.accounts), live_daemons, self.held_names)
        self.accounts = [AccountCollector(account, settings, ingest, clock, owner=self.owner,
                                          share=share, ssl_context=ssl_context)
                         for account in settings.imap.accounts]

    async def run(self, stop: asyncio.Event) -> None:
        if not self.accounts:
            await stop.wait()
            return
        await asyncio.gather(*(account.run(stop) for account in self.accounts))

    def held_leases(self) -> int:
        """How many folders this daemon collects now (the others' leases it waits for)."""
        return len(self.held_names())

    def held_names(self) -> list[str]:
        return [a.account.name for a in self.accounts if a.state.lease_epoch is not None]

    def states(self) -> dict[str, dict[str, Any]]:
        """Per account: connected, last success, last error and counts (health checks)."""
        return {a.account.name: a.state.as_dict() for a in self.accounts}


@dataclass(frozen=True)
class AccountReport:
    """What `check-config` found on one account; nothing on the server was changed."""

    name: str
    host: str
    ok: bool
    error: str | None = None
    capabilities: tuple[str, ...] = ()
    folder: str = ""
    folder_exists: bool = False
    messages: int | None = None
    move_to: str | None = None           # after = "move" only
    move_to_exists: bool | None = None   # created at the first move when missing


async def check_accounts(settings: Settings, *,
                         ssl_context: ssl.SSLContext | None = None) -> list[AccountReport]:
    """Log in to every account and look, without selecting or changing anything."""
    return list(await asyncio.gather(*(
        asyncio.to_thread(_check_account, account, settings, ssl_context)
        for account in settings.imap.accounts)))


def _check_account(account: ImapAccount, settings: Settings,
                   ssl_context: ssl.SSLContext | None) -> AccountReport:
    session = ImapSession(account, timeout_s=settings.imap.timeout_s,
                          token_timeout_s=settings.imap.oauth2_command_timeout_s,
                          ssl_context=ssl_context)
    try:
        session.connect()
        assert session.client is not None
        client = session.client
        exists = bool(client.folder_exists(session.folder))
        messages = None
        if exists:  # STATUS, not SELECT: it neither clears \Recent nor touches flags
            status = client.folder_status(session.folder, [b"MESSAGES"])
            messages = int(status[b"MESSAGES"])
        move_to = session.move_to if account.after == "move" else None
        return AccountReport(
            name=account.name, host=account.host, ok=exists,
            error=None if exists else f"folder {account.folder!r} does not exist",
            capabilities=tuple(sorted(session.capabilities)), folder=account.folder,
            folder_exists=exists, messages=messages, move_to=move_to,
            move_to_exists=None if move_to is None else bool(client.folder_exists(move_to)))
    except (CollectError, IMAPClientError, OSError) as exc:
        return AccountReport(name=account.name, host=account.host, ok=False,
                             error=describe_error(exc),
                             capabilities=tuple(sorted(session.capabilities)),
                             folder=account.folder)
    finally:
        session.close()
