"""The DATA reader on arbitrary byte streams: where it stops and what it returns are
those of the straightforward reader it replaced (stop at every ".\\r\\n")."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.ingest.data_spool import DataSink
from nexusmail.ingest.smtp_server import END_OF_DATA, BulkDataMixin


async def _reference(reader: asyncio.StreamReader, limit: int) -> bytes | None:
    """The reader before one read per message: one read per line ending in '.'."""
    parts: list[bytes] = []
    size = 0
    last = b""
    while True:
        try:
            chunk = await reader.readuntil(b".\r\n")
        except asyncio.LimitOverrunError as exc:
            chunk = await reader.readexactly(exc.consumed)
        size += len(chunk)
        if limit and size > limit + len(END_OF_DATA):
            parts = []
        else:
            parts.append(chunk)
        last = (last + chunk)[-len(END_OF_DATA):]
        if (size == 3 and chunk == b".\r\n") or last == END_OF_DATA:
            break
    if limit and size > limit + len(END_OF_DATA):
        return None
    data = b"".join(parts)[:-3]
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n")


class _Reader(BulkDataMixin):
    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self.data_size_limit = limit

    def _reset_timeout(self) -> None:
        """aiosmtpd's idle timer; no timer here."""


async def _ours(reader: asyncio.StreamReader, limit: int) -> bytes | None:
    """Our reader into an in-memory sink: the message, or None when over the limit."""
    sink = DataSink(None, 2**30)
    if not await _Reader(reader, limit)._read_data(sink):
        return None
    return await sink.content()


async def _run(stream: bytes, cuts: list[int], limit: int, stream_limit: int,
               ours: bool) -> tuple[Any, bytes]:
    reader = asyncio.StreamReader(limit=stream_limit)
    start = 0
    for cut in sorted({c % (len(stream) + 1) for c in cuts}):
        reader.feed_data(stream[start:cut])
        start = cut
    reader.feed_data(stream[start:])
    reader.feed_data(b"\r\n.\r\nQUIT\r\n")  # every stream ends, so neither reader hangs
    reader.feed_eof()
    try:
        got: Any = await (_ours(reader, limit) if ours else _reference(reader, limit))
    except (asyncio.CancelledError, asyncio.IncompleteReadError):
        got = "connection lost"
    return got, await reader.read()


@settings(max_examples=3000, deadline=None)
@given(stream=st.lists(st.sampled_from([b"\r", b"\n", b".", b"a", b"\r\n", b".\r\n",
                                        b"\r\n.\r\n", b"\n.\r"]), max_size=30).map(b"".join),
       cuts=st.lists(st.integers(0, 200), max_size=4),
       limit=st.sampled_from([0, 8, 40]), stream_limit=st.sampled_from([4, 16, 2**16]))
async def test_same_message_and_same_stop_as_the_reference(
        stream: bytes, cuts: list[int], limit: int, stream_limit: int) -> None:
    """Any bytes, any packet cuts, size and stream limits: same result, same rest."""
    expected = await _run(stream, cuts, limit, stream_limit, ours=False)
    assert await _run(stream, cuts, limit, stream_limit, ours=True) == expected
