"""Our SMTP/LMTP listener: aiosmtpd's protocol with a bulk DATA read.

aiosmtpd reads DATA one line at a time (`readuntil(b"\\r\\n")` per line): a 200 KB
attachment is ~2,700 awaits, and it was the largest single cost in the ingest
benchmark. Here DATA is read in pieces that end at ".\\r\\n" (the only place the end
marker can be), so base64 bodies come in a few calls. Everything else (commands,
hooks, status codes, SIZE/552) is aiosmtpd's.

Unlike aiosmtpd we do not refuse DATA lines longer than 1000 octets (RFC 5321
4.5.3.1.6): broken clients send them, and refusing a customer's mail for it helps
nobody; the size limit still bounds the whole message. Outside DATA a command line
stays bounded by RFC 5321's limit (with room for extensions): the stream's read limit
is set for DATA only, so 40 clients sending 20 MB "commands" without a line end
hold a few KB each, not 20 MB. Sessions are capped in all and per client address.

DATA itself is read in pieces of at most `DATA_READ_CHUNK`; a mail past
`[smtp] spool_threshold_bytes` goes to a spool file as it comes (`data_spool`), and
large mails are handed on only while they fit in `[smtp] in_flight_data_bytes`
together (`data_budget`).
"""

from __future__ import annotations

import asyncio
import re
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any

import structlog
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, syntax

from nexusmail import __version__
from nexusmail.config import Settings
from nexusmail.ingest.data_budget import ByteBudget
from nexusmail.ingest.data_spool import DataSink, remove_stale_spool_files
from nexusmail.ingest.smtp_handler import S451_TRY_AGAIN, SmtpHandler
from nexusmail.paths import spool_path

log = structlog.get_logger(__name__)

END_OF_DATA = b"\r\n.\r\n"
# A command line: RFC 5321 4.5.3.1.4 says 512 octets, SMTPUTF8 and SIZE/BODY parameters
# add some; what aiosmtpd reads before answering "500 Command line too long".
COMMAND_LINE_LIMIT = 4096
# One DATA read returns at most this much (the stream buffers up to twice it): 128 KiB
# keeps a 200 KB attachment to two reads and a transfer in flight to a few hundred KB.
DATA_READ_CHUNK = 128 * 1024
DEFAULT_SPOOL_THRESHOLD = 1024 * 1024
DATA_TERMINATION_TIMEOUT_S = 600.0
S421_TOO_MANY = b"421 4.7.0 Too many connections, try again later\r\n"

# "<local@domain>" with dot-atom parts (RFC 5321 4.1.2), the form nearly every client
# sends in MAIL FROM and RCPT TO; anything else goes to aiosmtpd's full parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_PATH = re.compile(rf"<({_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*)>")


class BulkDataMixin:
    """Replaces aiosmtpd's smtp_DATA with a bulk read; same hooks and replies."""

    _reader: asyncio.StreamReader
    envelope: Any
    data_size_limit: int | None
    transport: Any
    spool_dir: Path | None = None
    spool_threshold: int = DEFAULT_SPOOL_THRESHOLD
    budget: ByteBudget | None = None

    def _allow_long_reads(self, data_read_chunk: int) -> None:
        # During DATA the stream limit is how much one read may return without finding
        # ".\r\n" (a base64 body has none) and, twice over, how much the stream
        # buffers before it stops reading the socket: the memory of a transfer in
        # flight. Outside DATA it is the command line limit (set at the reader's creation).
        self._data_read_limit = data_read_chunk
        self.line_length_limit = COMMAND_LINE_LIMIT

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        smtp: Any = self
        if await smtp.check_helo_needed() or await smtp.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await smtp.push("503 Error: need RCPT command")
            return
        if arg:
            await smtp.push("501 Syntax: DATA")
            return
        await smtp.push("354 End data with <CR><LF>.<CR><LF>")
        sink = DataSink(self.spool_dir, self.spool_threshold)
        try:
            if not await self._read_data_with_long_lines(sink):
                smtp._set_post_data_state()
                await smtp.push("552 Error: Too much mail data")
                return
            # Waiting for the budget, then storing, may outlast the session's idle
            # timeout; RFC 5321 4.5.3.2.6 gives the client 10 minutes for our answer.
            smtp._reset_timeout(DATA_TERMINATION_TIMEOUT_S)
            # Only spooled mails count against the budget: a small one never waits.
            async with self._budget_for(sink):
                try:
                    if sink.failed is not None:
                        raise sink.failed
                    content = await sink.content()
                except OSError as exc:  # disk full: the sender keeps the mail and retries
                    log.error("smtp.spool_unreadable", error=str(exc))
                    smtp._set_post_data_state()
                    await smtp.push(S451_TRY_AGAIN)
                    return
                self.envelope.content = content
                self.envelope.original_content = content
                # Kept until the handler returns: a parse worker reads the mail from it.
                self.envelope.spool_path = sink.path
                del content
                status = await smtp._call_handler_hook("DATA")
                smtp._set_post_data_state()  # drops the envelope, and the mail with it
        finally:
            await sink.discard()
        await smtp.push("250 OK" if status is MISSING else status)
        smtp._reset_timeout()

    def _budget_for(self, sink: DataSink) -> AbstractAsyncContextManager[None]:
        if self.budget is None or not sink.spooled:
            return nullcontext()
        return self.budget.hold(sink.size)

    async def _read_data_with_long_lines(self, sink: DataSink) -> bool:
        # asyncio.StreamReader keeps its limit in `_limit` (stable since Python 3.4; a
        # test pins it): set for this message, back to a command line's after it.
        self._reader._limit = self._data_read_limit  # type: ignore[attr-defined]
        try:
            return await self._read_data(sink)
        finally:
            self._reader._limit = COMMAND_LINE_LIMIT  # type: ignore[attr-defined]

    async def _read_data(self, sink: DataSink) -> bool:
        """The message into `sink`, still stuffed; False when over the size limit.

        The end is exactly "\\r\\n.\\r\\n" (".\\r\\n" alone for an empty message), as
        before. Reads stop at "\\n.\\r", a line that starts ".\\r", which after
        dot-stuffing only the end marker is: a few reads per small message, where
        stopping at every ".\\r\\n" took one read per line ending in a full stop (~46 per
        mail of the bench corpus). At the start of a line (nothing read yet, or a read
        that ended in LF) a marker may follow at once, so that read stops at the first
        CR. A read also stops at the stream limit; the last five bytes seen carry the
        end marker's detection across such cuts.
        """
        limit = self.data_size_limit or 0
        size = 0
        tail = b""
        line_start = True
        smtp: Any = self
        while True:
            chunk = await self._read_until(b"\r" if line_start else b"\n.\r")
            smtp._reset_timeout()  # a client still sending is not idle
            if chunk.endswith(b"\n.\r") or (line_start and chunk == b".\r"):
                chunk += await self._read_exactly(1)  # the end marker's LF, or data
            size += len(chunk)
            tail = (tail + chunk)[-len(END_OF_DATA):]
            done = (size == 3 and chunk == b".\r\n") or tail == END_OF_DATA
            if limit and size > limit + len(END_OF_DATA):
                await sink.discard()  # keep reading to the end marker, but keep nothing
            else:
                # The final ".\r\n" (its CRLF ends the last line) is always whole in the
                # last piece: the end is only ever found by the reads above.
                await sink.add(chunk[:-3] if done else chunk)
            if done:
                return not (limit and size > limit + len(END_OF_DATA))
            line_start = chunk.endswith(b"\n")

    async def _read_until(self, separator: bytes) -> bytes:
        """Up to and including `separator`, or as much as the stream limit allows."""
        try:
            return await self._reader.readuntil(separator)
        except asyncio.LimitOverrunError as exc:
            return await self._read_exactly(exc.consumed)
        except asyncio.IncompleteReadError:
            log.info("smtp.connection_lost_in_data")
            raise asyncio.CancelledError from None

    async def _read_exactly(self, count: int) -> bytes:
        try:
            return await self._reader.readexactly(count)
        except asyncio.IncompleteReadError:
            log.info("smtp.connection_lost_in_data")
            raise asyncio.CancelledError from None


class SimpleAddressMixin:
    """A fast path for aiosmtpd's `_getaddr` (email._header_value_parser, ~0.05 ms per
    MAIL or RCPT command); same results, which a test compares over many forms."""

    local_part_limit: int

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _SIMPLE_PATH.match(arg)
        if match is not None:
            after = arg[match.end():]
            rest = after.lstrip(" \t")
            local_part = match.group(1).rpartition("@")[0]
            if (not after or (rest != after and not rest[:1].isspace()
                              and not rest.startswith("("))) and not (
                    self.local_part_limit and len(local_part) > self.local_part_limit):
                return match.group(1), rest
        slow: tuple[str | None, str | None] = super()._getaddr(arg)  # type: ignore[misc]
        return slow


class ConnectionLimits:
    """Sessions open now, in all and per client address, against the configured caps."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total_cap, self.per_ip_cap = total, per_ip
        self.open_total = 0
        self.open_by_ip: dict[str, int] = {}

    def admit(self, ip: str) -> bool:
        if self.open_total >= self.total_cap or self.open_by_ip.get(ip, 0) >= self.per_ip_cap:
            return False
        self.open_total += 1
        self.open_by_ip[ip] = self.open_by_ip.get(ip, 0) + 1
        return True

    def release(self, ip: str) -> None:
        self.open_total -= 1
        left = self.open_by_ip.get(ip, 1) - 1
        if left:
            self.open_by_ip[ip] = left
        else:
            self.open_by_ip.pop(ip, None)


class LimitedConnectionsMixin:
    """Refuses a session beyond the caps with 421 before aiosmtpd sees it."""

    limits: ConnectionLimits | None = None
    _admitted_ip: str | None = None

    def connection_made(self, transport: Any) -> None:
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        if self.limits is not None and not self.limits.admit(ip):
            log.warning("smtp.connection_refused", peer=ip, open=self.limits.open_total)
            transport.write(S421_TOO_MANY)
            transport.close()
            return
        self._admitted_ip = ip
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._admitted_ip is None:
            return  # refused at once: aiosmtpd never started on it
        if self.limits is not None:
            self.limits.release(self._admitted_ip)
        self._admitted_ip = None
        super().connection_lost(exc)  # type: ignore[misc]


class NexusSMTP(LimitedConnectionsMixin, SimpleAddressMixin, BulkDataMixin, SMTP):
    def __init__(self, handler: Any, *, data_size_limit: int,
                 limits: ConnectionLimits | None = None, spool_dir: Path | None = None,
                 spool_threshold: int = DEFAULT_SPOOL_THRESHOLD,
                 budget: ByteBudget | None = None, data_read_chunk: int = DATA_READ_CHUNK,
                 **kwargs: Any) -> None:
        self._allow_long_reads(data_read_chunk)
        self.limits, self.budget = limits, budget
        self.spool_dir, self.spool_threshold = spool_dir, spool_threshold
        super().__init__(handler, data_size_limit=data_size_limit, **kwargs)


class NexusLMTP(LimitedConnectionsMixin, SimpleAddressMixin, BulkDataMixin, LMTP):
    def __init__(self, handler: Any, *, data_size_limit: int,
                 limits: ConnectionLimits | None = None, spool_dir: Path | None = None,
                 spool_threshold: int = DEFAULT_SPOOL_THRESHOLD,
                 budget: ByteBudget | None = None, data_read_chunk: int = DATA_READ_CHUNK,
                 **kwargs: Any) -> None:
        self._allow_long_reads(data_read_chunk)
        self.limits, self.budget = limits, budget
        self.spool_dir, self.spool_threshold = spool_dir, spool_threshold
        super().__init__(handler, data_size_limit=data_size_limit, **kwargs)


async def start_listener(settings: Settings, handler: SmtpHandler) -> asyncio.Server:
    """Listen on [smtp] host/port with SMTP or LMTP, as configured."""
    protocol_class = NexusLMTP if settings.smtp.protocol == "lmtp" else NexusSMTP
    limits = ConnectionLimits(settings.smtp.max_connections,
                              settings.smtp.max_connections_per_ip)
    budget = ByteBudget(settings.smtp.in_flight_data_bytes)
    spool_dir = spool_path(settings)
    removed = await asyncio.to_thread(
        remove_stale_spool_files, spool_dir,
        now_epoch_s=handler.ingest.clock.now().timestamp())
    if removed:
        log.warning("smtp.stale_spool_removed", files=removed)

    def factory() -> SMTP:
        # The size limit and the spool threshold are read per connection from ingest's
        # live settings, which a reload (SIGHUP) swaps; host, port, protocol and the
        # in-flight budget need a restart.
        live = handler.ingest.settings
        return protocol_class(
            handler, hostname=settings.smtp.hostname, ident=f"nexusmail {__version__}",
            data_size_limit=live.limits.max_message_bytes, decode_data=False,
            enable_SMTPUTF8=True, limits=limits, spool_dir=spool_dir,
            spool_threshold=live.smtp.spool_threshold_bytes, budget=budget,
        )

    loop = asyncio.get_running_loop()
    return await loop.create_server(factory, settings.smtp.host, settings.smtp.port)
