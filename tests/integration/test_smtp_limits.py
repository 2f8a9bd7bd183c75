"""SMTP limits over real sockets: command lines stay small outside DATA, sessions are
capped in all and per address, and recipients per transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from daemon_harness import SUPPORT, Daemon, make_settings, running_daemon

from nexusmail.ingest.smtp_server import ConnectionLimits


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
async def daemon(tmp_path: Path, relay: Controller) -> AsyncIterator[Daemon]:
    settings = make_settings(tmp_path / "data", relay_port=relay.port, smtp={
        "port": 0, "max_connections": 45, "max_connections_per_ip": 42,
        "max_recipients": 5})
    async with running_daemon(settings) as running:
        yield running


async def _open(daemon: Daemon) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", daemon.smtp_port)
    greeting = await asyncio.wait_for(reader.readline(), 10)
    return reader, writer, greeting


async def test_long_command_lines_are_not_buffered(daemon: Daemon) -> None:
    """40 sessions each sending 5 MB without a line end outside DATA: the daemon holds
    a few KB per session, not the 200 MB sent, and answers 500 once the line ends."""
    before = _rss_bytes()
    sessions = [await _open(daemon) for _ in range(40)]
    junk = b"X" * (5 * 1024 * 1024)

    async def flood(writer: asyncio.StreamWriter) -> None:
        writer.write(junk)
        await writer.drain()

    await asyncio.gather(*(flood(w) for _, w, _ in sessions))
    await asyncio.sleep(0.5)
    grown = _rss_bytes() - before
    assert grown < 64 * 1024 * 1024, f"RSS grew by {grown // 2**20} MB"
    reader, writer, _ = sessions[0]
    writer.write(b"\r\n")
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"500")
    for _, w, _ in sessions:
        w.close()


async def test_sessions_beyond_the_cap_are_answered_421(daemon: Daemon) -> None:
    """The 43rd session from one address is refused with 421; once one closes, the next
    is served."""
    sessions = [await _open(daemon) for _ in range(42)]
    assert all(greeting.startswith(b"220") for _, _, greeting in sessions)
    _, extra_writer, refused = await _open(daemon)
    assert refused.startswith(b"421")
    extra_writer.close()
    sessions[0][1].close()
    await asyncio.sleep(0.2)
    _, writer, greeting = await _open(daemon)
    assert greeting.startswith(b"220")
    writer.close()
    for _, w, _ in sessions[1:]:
        w.close()


async def test_recipients_beyond_the_cap_get_452(daemon: Daemon) -> None:
    """The 6th RCPT of a transaction is answered 452 (try later), the 5 before it 250."""
    reader, writer, _ = await _open(daemon)

    async def say(line: bytes) -> bytes:
        writer.write(line + b"\r\n")
        while True:
            reply = await asyncio.wait_for(reader.readline(), 10)
            if reply[3:4] != b"-":
                return reply

    assert (await say(b"EHLO c.test")).startswith(b"250")
    assert (await say(b"MAIL FROM:<a@example.it>")).startswith(b"250")
    local, _, domain = SUPPORT.partition("@")
    codes = [(await say(f"RCPT TO:<{local}+{n}@{domain}>".encode()))[:3] for n in range(7)]
    assert codes == [b"250"] * 5 + [b"452"] * 2
    writer.close()


def test_connection_limits_count_per_address_and_in_all() -> None:
    """Admissions stop at either cap and resume as sessions end."""
    limits = ConnectionLimits(total=3, per_ip=2)
    assert [limits.admit("a"), limits.admit("a"), limits.admit("a")] == [True, True, False]
    assert limits.admit("b")
    assert not limits.admit("c")
    limits.release("a")
    assert limits.admit("c")
    assert limits.open_by_ip == {"a": 1, "b": 1, "c": 1}
