"""One blocking IMAP connection (imapclient): every method runs in the account's thread.

Only what collection needs: log in (password or XOAUTH2), select, find UIDs, fetch
without setting \\Seen, acknowledge (move or flag, never delete unless asked by a MOVE
fallback limited to the UIDs we copied), wait for new mail (IDLE or not at all).
"""

from __future__ import annotations

import contextlib
import shlex
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from nexusmail.config import ImapAccount
from nexusmail.ingest.parse import parse_mail

# Our mark in after = "flag" mode. A keyword, not \Seen: people read mail in webmail
# too, and \Seen set by them must never hide a mail from us, nor ours confuse them.
PROCESSED_KEYWORD = b"$NexusProcessed"
HEADER_FIELDS = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT)]"
# How long one IDLE wait blocks before looking at the stop flag again.
IDLE_SLICE_S = 0.5


class CollectError(Exception):
    """Collection cannot go on with this connection; the message is safe to log."""


class AuthFailed(CollectError):
    """The server refused our credentials, or no token could be obtained."""


@dataclass(frozen=True)
class FolderState:
    uidvalidity: int
    exists: int
    uidnext: int | None


@dataclass(frozen=True)
class HeaderFacts:
    message_id: str | None
    sender: str          # From address, lower case (inbound.sender)
    subject: str


def fetch_oauth2_token(command: str, timeout_s: float) -> str:
    """Run `oauth2_token_command` (no shell) and return the token it prints.

    Neither the token nor the command's output is ever put in an error: only the exit
    status and the first line of stderr, which token helpers use for their errors.
    """
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True,  # noqa: S603
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise AuthFailed(f"oauth2_token_command timed out after {timeout_s:g} s") from None
    except (OSError, ValueError) as exc:
        raise AuthFailed(f"oauth2_token_command could not run: {exc}") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or [""])[0][:200]
        raise AuthFailed(f"oauth2_token_command failed (exit {done.returncode})"
                         + (f": {first}" if first else ""))
    token = done.stdout.strip()
    if not token or len(token.split()) != 1:
        raise AuthFailed("oauth2_token_command printed no single token")
    return token


class ImapSession:
    """A logged-in connection to one account's folder. Not thread-safe: one thread."""

    def __init__(self, account: ImapAccount, *, timeout_s: float, token_timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.account = account
        self.timeout_s = timeout_s
        self.token_timeout_s = token_timeout_s
        self.ssl_context = ssl_context
        self.client: IMAPClient | None = None
        self.capabilities: frozenset[str] = frozenset()
        self.folder, self.move_to = account.folder, account.move_to

    # -- connection ---------------------------------------------------------------

    def connect(self) -> None:
        account = self.account
        context = self.ssl_context or ssl.create_default_context()
        client = IMAPClient(account.host, port=account.port, ssl=account.tls == "implicit",
                            ssl_context=context, timeout=self.timeout_s)
        self.client = client
        if account.tls == "starttls":
            client.starttls(context)
        try:
            if account.oauth2_token_command:
                token = fetch_oauth2_token(account.oauth2_token_command, self.token_timeout_s)
                client.oauth2_login(account.username, token)
            else:
                client.login(account.username, account.password.get_secret_value())
        except LoginError as exc:
            # The server's text ("[AUTHENTICATIONFAILED] ...") names no secret.
            raise AuthFailed(f"login refused for {account.username}: {_text(exc)}") from None
        self.capabilities = frozenset(c.decode().upper() for c in client.capabilities())
        # Config names use "/" between levels; Maildir++ servers (Dovecot's default)
        # use "." and refuse "/" in a name.
        delimiter = _delimiter(client)
        self.folder, self.move_to = (
            name.replace("/", delimiter) if delimiter and delimiter != "/" else name
            for name in (account.folder, account.move_to))

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, OSError):
            with contextlib.suppress(IMAPClientError, OSError):
                client.shutdown()

    def _c(self) -> IMAPClient:
        if self.client is None:
            raise CollectError("not connected")
        return self.client

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    # -- reading ------------------------------------------------------------------

    def select(self) -> FolderState:
        info = self._c().select_folder(self.folder)
        uidnext = info.get(b"UIDNEXT")
        return FolderState(int(info[b"UIDVALIDITY"]), int(info.get(b"EXISTS", 0)),
                           None if uidnext is None else int(uidnext))

    def uids_above(self, highest: int) -> list[int]:
        # "UID n:*" also matches the largest UID when it is below n (RFC 3501 6.4.8):
        # filter, or the last mail would be fetched again at every poll.
        found = self._c().search(["UID", f"{highest + 1}:*"])
        return sorted(int(uid) for uid in found if int(uid) > highest)

    def unacknowledged(self, highest: int) -> list[int]:
        """UIDs up to `highest` still waiting for their move/flag (stored, then a crash)."""
        if highest < 1:
            return []
        criteria: list[Any] = ["UID", f"1:{highest}"]
        if self.account.after == "flag":
            criteria += ["UNKEYWORD", PROCESSED_KEYWORD.decode()]
        return sorted(int(uid) for uid in self._c().search(criteria) if int(uid) <= highest)

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        if not uids:
            return {}
        data = self._c().fetch(list(uids), ["RFC822.SIZE"])
        return {int(uid): int(d[b"RFC822.SIZE"]) for uid, d in data.items()}

    def headers(self, uids: Sequence[int]) -> dict[int, HeaderFacts]:
        if not uids:
            return {}
        data = self._c().fetch(list(uids), [HEADER_FIELDS])
        facts = {}
        for uid, d in data.items():
            raw = next((v for k, v in d.items() if k.startswith(b"BODY[HEADER")), b"") or b""
            facts[int(uid)] = parse_header_facts(raw)
        return facts

    def bodies(self, uids: Sequence[int]) -> dict[int, bytes]:
        """The raw mails; BODY.PEEK so that fetching never sets \\Seen for the people
        who read this mailbox too."""
        if not uids:
            return {}
        data = self._c().fetch(list(uids), ["BODY.PEEK[]"])
        return {int(uid): bytes(d[b"BODY[]"]) for uid, d in data.items() if b"BODY[]" in d}

    # -- acknowledging ------------------------------------------------------------

    def acknowledge(self, uids: Sequence[int]) -> None:
        """Move or flag mails that are already committed (never before the store holds them)."""
        if not uids:
            return
        client, account = self._c(), self.account
        if account.after == "flag":
            client.add_flags(list(uids), [PROCESSED_KEYWORD], silent=True)
            return
        if not client.folder_exists(self.move_to):
            client.create_folder(self.move_to)
        if "MOVE" in self.capabilities:
            client.move(list(uids), self.move_to)
        elif "UIDPLUS" in self.capabilities:
            # UID EXPUNGE removes exactly these UIDs; a plain EXPUNGE would also remove
            # whatever someone else marked \Deleted in this folder.
            client.copy(list(uids), self.move_to)
            client.add_flags(list(uids), [b"\\Deleted"], silent=True)
            client.uid_expunge(list(uids))
        else:
            # No way to remove only our mails: copy and mark them, delete nothing.
            client.copy(list(uids), self.move_to)
            client.add_flags(list(uids), [PROCESSED_KEYWORD], silent=True)

    # -- waiting ------------------------------------------------------------------

    def wait_idle(self, max_wait_s: float, stop: threading.Event) -> bool:
        """IDLE until the server reports new mail (True), `max_wait_s` passes or `stop`
        is set (False). Ending IDLE within max_wait_s is how it is renewed."""
        client = self._c()
        client.idle()
        deadline = time.monotonic() + max_wait_s
        quick_empty = 0
        try:
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                started = time.monotonic()
                responses = client.idle_check(timeout=min(IDLE_SLICE_S, left))
                if any(_is_bye(r) for r in responses):
                    raise CollectError("server closed the connection during IDLE")
                if any(len(r) >= 2 and r[1] == b"EXISTS" for r in responses):
                    return True
                # imapclient returns [] at once on EOF: a dead socket would spin here.
                quick = not responses and time.monotonic() - started < IDLE_SLICE_S / 4
                quick_empty = quick_empty + 1 if quick else 0
                if quick_empty >= 3:
                    raise CollectError("connection lost during IDLE")
            return False
        finally:
            client.idle_done()

    def noop(self) -> None:
        self._c().noop()


def parse_header_facts(raw: bytes) -> HeaderFacts:
    """Message-ID and sender read exactly as ingest reads them (its duplicate key)."""
    mail = parse_mail(raw, max_body_chars=100, max_attachments=0)
    return HeaderFacts(mail.message_id, mail.from_addr, mail.subject)


def chunk_by_size(uids: Iterable[int], sizes: dict[int, int], *, max_count: int,
                  max_bytes: int) -> list[list[int]]:
    """Groups of UIDs to fetch in one command, bounded in count and in bytes held."""
    chunks: list[list[int]] = []
    current: list[int] = []
    held = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and (len(current) >= max_count or held + size > max_bytes):
            chunks.append(current)
            current, held = [], 0
        current.append(uid)
        held += size
    if current:
        chunks.append(current)
    return chunks


def describe_error(exc: BaseException) -> str:
    """One line for logs and health: our own errors as written, others with their type."""
    if isinstance(exc, CollectError):
        return str(exc)[:300]
    return f"{type(exc).__name__}: {str(exc) or type(exc).__name__}"[:300]


def _delimiter(client: IMAPClient) -> str | None:
    """The hierarchy delimiter (LIST "" "" answers it without listing folders)."""
    for _flags, delimiter, _name in client.list_folders("", ""):
        if delimiter:
            return bytes(delimiter).decode() if isinstance(delimiter, bytes) else str(delimiter)
    return None


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 1 and response[0] == b"BYE"


def _text(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text[:300]
