"""Where composed mail goes: an SMTP relay (aiosmtplib) or, with no relay, a Maildir.

A transport only says "sent", "try later" (TransientSendError; RelayUnavailableError
when no mail at all can go now) or "give up" (PermanentSendError); retry policy lives
in the outbox worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import re
import ssl
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog
from aiosmtplib.email import parse_address

from nexusmail.config import OutboundSettings
from nexusmail.dispatch.compose import wire_bytes
from nexusmail.paths import OUTGOING_MAILDIR

log = structlog.get_logger(__name__)

# Relays drop idle clients (Postfix smtpd_timeout is 300 s); reconnect well before.
MAX_IDLE_S = 60.0

# A bare address whose every character is safe on an SMTP command line (dot-atom
# characters, then a host name): it goes into the envelope as it is. Anything else (a
# display name, a quoted local part, stray spaces) goes through aiosmtplib's parser.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\Z")


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
        try:
            envelope = _Envelope(_envelope_address(sender),
                                 [_envelope_address(r) for r in recipients], sender, recipients)
        except ValueError as exc:  # before any command: the connection stays good
            raise _classify(exc) from exc
        data = wire_bytes(message)
        async with self._slots:
            client, reused = await self._checkout()
            try:
                await self._send_on(client, data, envelope)
            except _ConnectionLost:
                if not reused:
                    raise
                # A kept connection the relay had closed meanwhile: one fresh try.
                client = await self._connect()
                await self._send_on(client, data, envelope)

    async def _send_on(self, client: aiosmtplib.SMTP, data: bytes, envelope: _Envelope) -> None:
        try:
            # One deadline for the whole transaction instead of aiosmtplib's per reply:
            # its asyncio.wait_for on each of the ~4 replies cost ~0.15 ms of the event
            # loop per mail. The budget is the sum of what the per-reply limits allowed
            # (MAIL, each RCPT, DATA, and the upload with its final reply).
            deadline_s = self.settings.timeout_s * (3 + len(envelope.recipients))
            async with asyncio.timeout(deadline_s):
                await _transaction(client, envelope, data)
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
            if client.is_ehlo_or_helo_needed:  # already done when STARTTLS was
                await _greet(client)
        except Exception as exc:
            _close_quietly(client)
            raise _classify(exc) from exc
        except BaseException:
            _close_quietly(client)
            raise
        self.connections_opened += 1
        log.debug("outbound.connected", host=s.host, port=s.port, tls=s.implicit_tls or s.starttls)
        return client


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO from a relay that knows no extensions (as aiosmtplib would, lazily,
    before its first MAIL)."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


@dataclass(frozen=True)
class _Envelope:
    """MAIL FROM and RCPT TO as they go on the command line, and as they were given."""

    sender_address: bytes
    recipient_addresses: list[bytes]
    sender: str
    recipients: list[str]


async def _transaction(client: aiosmtplib.SMTP, envelope: _Envelope, data: bytes) -> None:
    """MAIL, RCPT, DATA with aiosmtplib's outcomes (its exceptions, RSET after a refusal,
    success while any recipient was accepted), for bytes with CRLF line ends.

    aiosmtplib's sendmail parses every address twice (a check before the envelope, then
    again to quote it) and normalises the line ends of the whole mail once more to
    count its SIZE: ~0.07 ms per acknowledgement, a seventh of what sending it costs.
    """
    options = []
    if client.supports_extension("size"):
        size = len(data) + (0 if data.endswith(b"\r\n") else 2)
        options.append(b"SIZE=%d" % size)
    try:
        response = await client.execute_command(
            b"MAIL", b"FROM:<" + envelope.sender_address + b">", *options, timeout=None)
        if response.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(response.code, response.message, envelope.sender)
        refused = []
        for recipient, address in zip(envelope.recipients, envelope.recipient_addresses,
                                      strict=True):
            response = await client.execute_command(b"RCPT", b"TO:<" + address + b">",
                                                    timeout=None)
            if response.code not in (aiosmtplib.SMTPStatus.completed,
                                     aiosmtplib.SMTPStatus.will_forward):
                refused.append(aiosmtplib.SMTPRecipientRefused(
                    response.code, response.message, recipient))
        if len(refused) == len(envelope.recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        await client.data(data, timeout=None)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        # Leave the session ready for the next mail; a failing RSET changes nothing.
        with contextlib.suppress(ConnectionError, aiosmtplib.SMTPResponseException):
            await client.rset(timeout=None)
        raise


def _envelope_address(address: str) -> bytes:
    """The address for MAIL FROM or RCPT TO; ValueError when it cannot go there safely."""
    if _PLAIN_ADDRESS.match(address) is None:
        address = parse_address(address)
    return address.encode("ascii")  # UnicodeEncodeError (a ValueError): no SMTPUTF8


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
