"""The bulk DATA reader over a real socket: the bytes come out exactly as sent."""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexusmail.ingest.data_spool import DataSink
from nexusmail.ingest.smtp_server import COMMAND_LINE_LIMIT, BulkDataMixin, NexusSMTP


class Keep:
    """A handler that keeps what DATA delivered (the seam our SmtpHandler plugs into)."""

    def __init__(self) -> None:
        self.contents: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.contents.append(envelope.original_content)
        return "250 kept"


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def reply(self) -> bytes:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            if line[3:4] != b"-":
                return line

    async def say(self, data: bytes) -> bytes:
        self.writer.write(data)
        return await self.reply()

    async def send(self, message: bytes, *, chunk: int | None = None) -> bytes:
        """A whole transaction; `message` is already dot-stuffed and CRLF-terminated."""
        assert (await self.say(b"MAIL FROM:<a@x.it>\r\n")).startswith(b"250")
        assert (await self.say(b"RCPT TO:<b@x.it>\r\n")).startswith(b"250")
        assert (await self.say(b"DATA\r\n")).startswith(b"354")
        payload = message + b".\r\n"
        step = chunk or len(payload)
        for i in range(0, len(payload), step):
            self.writer.write(payload[i:i + step])
            await self.writer.drain()
        return await self.reply()


# In memory with the daemon's read size; or spooled to a file past 64 bytes, read 7
# bytes at a time, so every end marker, CRLF-dot and stuffed dot falls across cuts.
MODES = {"memory": {}, "spooled": {"spool_threshold": 64, "data_read_chunk": 7}}


@pytest.fixture(params=list(MODES))
async def server(request: pytest.FixtureRequest,
                 tmp_path: Path) -> AsyncIterator[tuple[Keep, int]]:
    keep = Keep()
    loop = asyncio.get_running_loop()
    spool = tmp_path / "spool"
    srv = await loop.create_server(
        lambda: NexusSMTP(keep, data_size_limit=300_000, decode_data=False,
                          hostname="t.test", spool_dir=spool, **MODES[request.param]),
        "127.0.0.1", 0)
    yield keep, srv.sockets[0].getsockname()[1]
    srv.close()
    assert not spool.exists() or not list(spool.iterdir()), "a spool file was left behind"


@pytest.fixture
async def client(server: tuple[Keep, int]) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server[1])
    connection = Client(reader, writer)
    await connection.reply()
    assert (await connection.say(b"EHLO c.test\r\n")).startswith(b"250")
    yield connection
    writer.close()


def stuff(text: bytes) -> bytes:
    """What a client sends for `text` (RFC 5321 4.5.2 transparency)."""
    stuffed = text.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"Subject: x\r\n\r\none line\r\n",
        b"Subject: x\r\n\r\nGrazie.\r\nA presto.\r\n",
        b".starts with a dot\r\n\r\n.\r\n..two\r\n. space\r\n",
        b"Subject: b64\r\n\r\n" + base64.encodebytes(os.urandom(150_000)).replace(b"\n", b"\r\n"),
        b"Subject: long\r\n\r\n" + b"x" * 5000 + b".\r\n",
    ],
    ids=["empty", "one-line", "lines-ending-in-dot", "dots", "base64-150k", "long-line"],
)
async def test_message_bytes_survive(server: tuple[Keep, int], client: Client,
                                     message: bytes) -> None:
    """Whatever the shape, the handler receives exactly the bytes the client meant."""
    assert (await client.send(stuff(message))).startswith(b"250")
    assert server[0].contents == [message]


async def test_end_marker_split_across_packets(server: tuple[Keep, int], client: Client) -> None:
    """The end marker arriving one byte at a time is still found."""
    message = b"Subject: s\r\n\r\nab.\r\ncd\r\n"
    assert (await client.send(stuff(message), chunk=1)).startswith(b"250")
    assert server[0].contents == [message]


async def test_too_big_gets_552_and_the_session_goes_on(server: tuple[Keep, int],
                                                          client: Client) -> None:
    """Over the limit: 552 after the end marker, and the next mail on the connection works."""
    big = b"Subject: big\r\n\r\n" + b"y" * 76 + b"\r\n"
    assert (await client.send(big * 5000)).startswith(b"552")
    assert (await client.send(b"Subject: small\r\n\r\nok\r\n")).startswith(b"250")
    assert server[0].contents == [b"Subject: small\r\n\r\nok\r\n"]


async def test_pipelined_command_after_data_is_not_swallowed(server: tuple[Keep, int],
                                                               client: Client) -> None:
    """Bytes after the end marker belong to the next command."""
    await client.say(b"MAIL FROM:<a@x.it>\r\n")
    await client.say(b"RCPT TO:<b@x.it>\r\n")
    await client.say(b"DATA\r\n")
    client.writer.write(b"Subject: p\r\n\r\nbody\r\n.\r\nNOOP\r\n")
    assert (await client.reply()).startswith(b"250 kept")
    assert (await client.reply()).startswith(b"250")  # the NOOP's own reply
    assert server[0].contents == [b"Subject: p\r\n\r\nbody\r\n"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
                max_size=30))
async def test_any_lines_round_trip(server: tuple[Keep, int], client: Client,
                                    lines: list[bytes]) -> None:
    """Random lines (dots, NULs, 8-bit) come out byte for byte after stuffing."""
    message = b"".join(line + b"\r\n" for line in lines)
    server[0].contents.clear()
    assert (await client.send(stuff(message))).startswith(b"250")
    assert server[0].contents == [message]


async def test_our_own_failure_is_never_a_5xx() -> None:
    """An unexpected error behind DATA answers 451 (the sender keeps the mail and
    retries), never aiosmtpd's 500."""
    from nexusmail.ingest.smtp_handler import SmtpHandler

    class Broken:
        """Stands in for Ingest at the handler's seam, failing as a bug would."""

        async def accept(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a bug")

    handler = SmtpHandler(Broken(), {"b@x.it"})  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: NexusSMTP(handler, data_size_limit=10_000, decode_data=False,
                          hostname="t.test"), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
    client = Client(reader, writer)
    await client.reply()
    await client.say(b"EHLO c.test\r\n")
    assert (await client.send(b"Subject: x\r\n\r\nbody\r\n")).startswith(b"451")
    writer.close()
    srv.close()


class _Reading(BulkDataMixin):
    """Our DATA reader over a StreamReader the test feeds piece by piece."""

    def __init__(self, stream: asyncio.StreamReader, data_size_limit: int) -> None:
        self._reader = stream
        self.data_size_limit = data_size_limit
        self._allow_long_reads(8)

    def _reset_timeout(self, duration: float | None = None) -> None:
        """No session timer here (aiosmtpd's SMTP has one)."""


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([b"", b".", b"..", b"a.", b".\r", b"x" * 20]), max_size=12),
       st.lists(st.integers(min_value=1, max_value=200), max_size=8),
       st.sampled_from([None, 16]))
async def test_end_marker_and_dots_split_across_reads(tmp_path: Path, lines: list[bytes],
                                                      cuts: list[int],
                                                      threshold: int | None) -> None:
    """Each piece is read on its own (reads of at most 8 bytes), so the end marker, a
    CRLF-dot and a stuffed dot fall across reads; the mail comes out exact, in memory
    or spooled, and the spool file is gone after."""
    message = b"".join(line + b"\r\n" for line in lines)
    payload = stuff(message) + b".\r\n" + b"NOOP\r\n"
    stream = asyncio.StreamReader(limit=COMMAND_LINE_LIMIT)
    spool = tmp_path / f"spool-{os.urandom(4).hex()}"
    sink = DataSink(spool if threshold else None, threshold or 0)
    reading = asyncio.create_task(_Reading(stream, 10_000)._read_data_with_long_lines(sink))
    bounds = [0, *sorted(min(c, len(payload)) for c in cuts), len(payload)]
    for start, end in itertools.pairwise(bounds):
        stream.feed_data(payload[start:end])
        # Until the reader waits for more (or is done): this piece is a read of its own.
        for _ in range(1000):
            if reading.done() or stream._waiter is not None:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0)
    assert await asyncio.wait_for(reading, 5)
    assert await sink.content() == message
    assert sink.spooled == (threshold is not None and len(stuff(message)) > 16)
    await sink.discard()
    assert not spool.exists() or not list(spool.iterdir())
    assert await stream.read(6) == b"NOOP\r\n"  # nothing past the end marker was taken


async def test_a_client_gone_mid_data_leaves_no_spool_file(tmp_path: Path) -> None:
    """A client that disconnects halfway through a spooled mail: the file goes with it."""
    keep, spool = Keep(), tmp_path / "spool"
    srv = await asyncio.get_running_loop().create_server(
        lambda: NexusSMTP(keep, data_size_limit=10_000_000, decode_data=False,
                          hostname="t.test", spool_dir=spool, spool_threshold=1000),
        "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
    client = Client(reader, writer)
    await client.reply()
    for command in (b"EHLO c.test\r\n", b"MAIL FROM:<a@x.it>\r\n", b"RCPT TO:<b@x.it>\r\n",
                    b"DATA\r\n"):
        await client.say(command)
    writer.write(b"Subject: half\r\n\r\n" + b"y" * 400_000)  # past a read of 128 KiB
    await writer.drain()
    for _ in range(200):
        if spool.exists() and list(spool.iterdir()):
            break
        await asyncio.sleep(0.01)
    assert len(list(spool.iterdir())) == 1
    writer.close()
    for _ in range(200):
        if not list(spool.iterdir()):
            break
        await asyncio.sleep(0.01)
    assert list(spool.iterdir()) == []
    assert keep.contents == []
    srv.close()


async def test_a_spool_that_cannot_be_written_answers_451(tmp_path: Path) -> None:
    """When the spool file cannot be created or written (here its folder cannot be made;
    a full disk fails alike) the transfer is read to its end and answered 451, never a
    5xx that would make the sender drop the mail; the session goes on."""
    keep, blocker = Keep(), tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder should be")
    srv = await asyncio.get_running_loop().create_server(
        lambda: NexusSMTP(keep, data_size_limit=10_000_000, decode_data=False,
                          hostname="t.test", spool_dir=blocker / "spool", spool_threshold=1000,
                          data_read_chunk=512),
        "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
    client = Client(reader, writer)
    await client.reply()
    await client.say(b"EHLO c.test\r\n")
    big = b"Subject: big\r\n\r\n" + b"z" * 76 * 100 + b"\r\n"
    assert (await client.send(big)).startswith(b"451")
    assert (await client.send(b"Subject: small\r\n\r\nok\r\n")).startswith(b"250")
    assert keep.contents == [b"Subject: small\r\n\r\nok\r\n"]
    writer.close()
    srv.close()


async def test_a_slow_but_steady_sender_outlasts_the_idle_timeout() -> None:
    """The session's idle timeout (1 s here) counts from the last piece of DATA read,
    not from the DATA command: a 2 s transfer in steady pieces is delivered."""
    keep = Keep()
    srv = await asyncio.get_running_loop().create_server(
        lambda: NexusSMTP(keep, data_size_limit=100_000, decode_data=False, hostname="t.test",
                          data_read_chunk=64, timeout=1),
        "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.sockets[0].getsockname()[1])
    client = Client(reader, writer)
    await client.reply()
    for command in (b"EHLO c.test\r\n", b"MAIL FROM:<a@x.it>\r\n", b"RCPT TO:<b@x.it>\r\n",
                    b"DATA\r\n"):
        await client.say(command)
    message = b"Subject: slow\r\n\r\n" + b"w" * 76 * 10 + b"\r\n"
    for i in range(0, len(message), 80):
        writer.write(message[i:i + 80])
        await writer.drain()
        await asyncio.sleep(0.2)
    writer.write(b".\r\n")
    assert (await client.reply()).startswith(b"250")
    assert keep.contents == [message]
    writer.close()
    srv.close()
