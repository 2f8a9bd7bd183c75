"""Where composed mail goes: an SMTP relay (aiosmtplib) or, with no relay, a Maildir.

A transport only says "sent", "try later" (TransientSendError; RelayUnavailableError
when no mail at all can go now) or "give up" (PermanentSendError); retry policy lives
in the outbox worker.
"""

from __future__ import annotations

import asyncio
import mailbox
import ssl
from email.message import Message
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from nexusmail.config import OutboundSettings
from nexusmail.dispatch.compose import wire_bytes
from nexusmail.paths import OUTGOING_MAILDIR

log = structlog.get_logger(__name__)

# Relays drop idle clients (Postfix smtpd_timeout is 300 s); reconnect well before.
MAX_IDLE_S = 60.0


class SendError(Exception):
    """A mail could not be handed over; `code` is the SMTP reply code when there was one."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientSendError(SendError):
    """Try again later: relay down, timeout, 4xx, TLS or AUTH trouble (a config fix helps)."""


class PermanentSendError(SendError):
    """The relay refused this mail for good (5xx for the sender, recipient or content)."""


class RelayUnavailableError(TransientSendError):
    """Nothing can be sent now, whatever the mail: connection refused or lost, timeout,
    TLS or AUTH failure, Maildir not writable. The worker pauses all sending for a while
    instead of trying every queued row against a dead relay."""


class _ConnectionLost(RelayUnavailableError):
    """The relay connection dropped before the mail was accepted."""


class Transport(Protocol):
    async def send(self, message: Message, *, sender: str, recipients: list[str]) -> None:
        """Hand `message` over; return only once it was accepted."""
        ...

    async def close(self) -> None:
        """Release connections; the transport may not be used afterwards."""
        ...


class SmtpRelayTransport:
    """aiosmtplib to the configured relay, reusing up to `max_connections` connections.

    A connection is reused while it stays healthy (one EHLO/STARTTLS/AUTH for many
    mails); after a connection-level failure it is dropped and a new one opened. A 4xx
    or 5xx reply leaves the connection usable (aiosmtplib sends RSET).
    """

    def __init__(
        self,
        settings: OutboundSettings,
        *,
        max_connections: int = 4,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if not settings.host:
            raise ValueError("SmtpRelayTransport needs [outbound] host")
        self.settings = settings
        self.tls_context = tls_context
        self.local_hostname = local_hostname
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (client, last used)
        self._closed = False
        self.connections_opened = 0  # visible to tests and benchmarks

    async def send(self, message: Message, *, sender: str, recipients: list[str]) -> None:
        if self._closed:
            raise RelayUnavailableError("transport is closed")
        async with self._slots:
            client, reused = await self._checkout()
            try:
                await self._send_on(client, message, sender, recipients)
            except _ConnectionLost:
                if not reused:
                    raise
                # A kept connection the relay had closed meanwhile: one fresh try.
                client = await self._connect()
                await self._send_on(client, message, sender, recipients)

    async def _send_on(
        self, client: aiosmtplib.SMTP, message: Message, sender: str, recipients: list[str]
    ) -> None:
        data = wire_bytes(message)
        try:
            # One deadline for the whole transaction instead of aiosmtplib's per reply:
            # its asyncio.wait_for on each of the ~4 replies cost ~0.15 ms of the event
            # loop per mail. The budget is the sum of what the per-reply limits allowed
            # (MAIL, each RCPT, DATA, and the upload with its final reply).
            deadline_s = self.settings.timeout_s * (3 + len(recipients))
            async with asyncio.timeout(deadline_s):
                await client.sendmail(sender, recipients, data, timeout=None)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            _close_quietly(client)
            raise _ConnectionLost(f"relay connection lost: {exc}") from exc
        except Exception as exc:
            if isinstance(exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused):
                self._checkin(client)  # the relay answered; the session is still good
            else:
                _close_quietly(client)
            raise _classify(exc) from exc
        except BaseException:
            _close_quietly(client)  # cancelled mid-transaction: the session state is unknown
            raise
        self._checkin(client)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for client, _ in idle:
            await _quit_quietly(client)

    async def _checkout(self) -> tuple[aiosmtplib.SMTP, bool]:
        now = asyncio.get_running_loop().time()
        while self._idle:
            client, last_used = self._idle.pop()
            if client.is_connected and now - last_used < MAX_IDLE_S:
                return client, True
            await _quit_quietly(client)
        return await self._connect(), False

    def _checkin(self, client: aiosmtplib.SMTP) -> None:
        if self._closed or not client.is_connected:
            return
        self._idle.append((client, asyncio.get_running_loop().time()))

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username or None,
            # The secret leaves its SecretStr only here, straight into the client.
            password=s.password.get_secret_value() if s.username else None,
            use_tls=s.implicit_tls,
            start_tls=s.starttls and not s.implicit_tls,
            tls_context=self.tls_context,
            timeout=s.timeout_s,
            local_hostname=self.local_hostname,
        )
        try:
            await client.connect()
        except Exception as exc:
            _close_quietly(client)
            raise _classify(exc) from exc
        except BaseException:
            _close_quietly(client)
            raise
        self.connections_opened += 1
        log.debug("outbound.connected", host=s.host, port=s.port, tls=s.implicit_tls or s.starttls)
        return client


def _classify(exc: BaseException) -> SendError:
    """Map what aiosmtplib or the socket raised onto retry-or-give-up."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        if codes and all(500 <= code < 600 for code in codes):
            return PermanentSendError(f"recipient refused: {text}", code=codes[0])
        return TransientSendError(f"recipient deferred: {text}", code=codes[0] if codes else None)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # A wrong password is a configuration fault, not this mail's: keep retrying.
        return RelayUnavailableError(f"relay authentication failed: {exc.code}", code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        # Our envelope sender is the same for every mail: a refusal is the relay's
        # configuration, not this mail's fault.
        return RelayUnavailableError(f"relay refused our sender: {exc.code} {exc.message}",
                                     code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
        return RelayUnavailableError(f"relay refused the session: {exc.code} {exc.message}",
                                     code=exc.code)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        kind = PermanentSendError if 500 <= exc.code < 600 else TransientSendError
        return kind(f"relay answered {exc.code} {exc.message}", code=exc.code)
    if type(exc) is TimeoutError:  # our deadline on the whole transaction
        return RelayUnavailableError("relay timed out")
    if isinstance(exc, ValueError):
        # aiosmtplib refuses an address it cannot put in an envelope safely.
        return PermanentSendError(f"unusable address: {exc}")
    # Connection refused, timeouts, TLS failures, SMTPNotSupported (STARTTLS or AUTH
    # missing: configuration), anything the socket raised.
    return RelayUnavailableError(f"{type(exc).__name__}: {exc}")


def _close_quietly(client: aiosmtplib.SMTP) -> None:
    try:
        client.close()
    except Exception as exc:  # closing a broken socket: nothing left to save
        log.debug("outbound.close_failed", error=repr(exc))


async def _quit_quietly(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await client.quit()
            return
        except (aiosmtplib.SMTPException, OSError):
            pass  # the relay had gone; just drop the socket
    _close_quietly(client)


class MaildirTransport:
    """No relay configured: every outgoing mail becomes a file in a Maildir, so nothing
    is lost and a new user can read what would have been sent (any mail client opens
    it; `ls <data_dir>/outgoing/new`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._maildir: mailbox.Maildir | None = None

    async def send(self, message: Message, *, sender: str, recipients: list[str]) -> None:
        # Envelope first, as a local delivery agent would write it.
        envelope = (
            f"Return-Path: <{sender}>\nDelivered-To: {', '.join(recipients)}\n"
        ).encode("ascii", "replace")
        data = envelope + wire_bytes(message, linesep="\n")
        try:
            await asyncio.to_thread(self._add, data)
        except OSError as exc:  # disk full, permissions: may pass, try again later
            raise RelayUnavailableError(f"cannot write to {self.path.name}: {exc}") from exc

    def _add(self, data: bytes) -> str:
        if self._maildir is None:
            self._maildir = mailbox.Maildir(self.path, factory=None, create=True)
        return self._maildir.add(data)

    async def close(self) -> None:
        self._maildir = None


def build_transport(outbound: OutboundSettings, data_dir: Path) -> Transport:
    """The relay when `[outbound] host` is set, else the Maildir `<data_dir>/outgoing`."""
    if outbound.host:
        return SmtpRelayTransport(outbound)
    return MaildirTransport(data_dir / OUTGOING_MAILDIR)
