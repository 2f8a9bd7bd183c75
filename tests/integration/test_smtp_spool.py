"""Large mails over real sockets against the real `nexusmail run` process: twenty
concurrent 10 MB transfers are spooled to files, so the daemon's memory stays bounded,
every mail is stored byte for byte, and no spool file is left behind. (Forty 20 MB
mails, the red team's figure, take minutes: bench/RESULTS.md has that run.)"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from smtp_sink import free_port

SUPPORT = "assistenza@firm.test"
MIB = 1024 * 1024


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    smtp_port: int
    data_dir: Path
    log_path: Path

    def status(self, field: str) -> int:
        """A memory figure of the daemon from /proc (VmRSS, VmHWM), in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field}")

    def wait_for_log(self, event: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if f'"event": "{event}"' in self.log_path.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} in the daemon's log:\n{self.log_path.read_text()}")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """`nexusmail run` with its defaults but for ports and a 30 MB message limit."""
    smtp_port, data_dir = free_port(), tmp_path / "data"
    config = tmp_path / "nexusmail.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{data_dir}"\n'
        f"[smtp]\nport = {smtp_port}\nmax_connections_per_ip = 45\n"
        f"[web]\nport = {free_port()}\n"
        f'[mail]\nsupport_addresses = ["{SUPPORT}"]\n'
        f"[limits]\nmax_message_bytes = {30 * MIB}\n")
    log_path = tmp_path / "daemon.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nexusmail", "--config", str(config), "run"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    running = DaemonProcess(process, smtp_port, data_dir, log_path)
    try:
        running.wait_for_log("daemon.started")
        yield running
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


async def _reply(reader: asyncio.StreamReader, timeout_s: float = 30) -> bytes:
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout_s)
        if line[3:4] != b"-":
            return line


async def _start_data(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A session that has just been told 354."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert (await _reply(reader)).startswith(b"220")
    for command, code in ((b"EHLO c.test", b"250"), (b"MAIL FROM:<a@example.it>", b"250"),
                          (f"RCPT TO:<{SUPPORT}>".encode(), b"250"), (b"DATA", b"354")):
        writer.write(command + b"\r\n")
        assert (await _reply(reader)).startswith(code), command
    return reader, writer


def _attachment_body(size: int) -> bytes:
    """A base64 attachment part of about `size` bytes, CRLF lines of 76."""
    encoded = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return (b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="scan.pdf"\r\n\r\n'
            + encoded + b"--b--\r\n")


def _head(n: int) -> bytes:
    return (f"From: cliente{n}@example.it\r\nTo: {SUPPORT}\r\nSubject: Scansione {n}\r\n"
            f"Message-ID: <big{n}@example.it>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain\r\n\r\nIn allegato la scansione {n}.\r\n"
            ).encode()


def _spool_files(daemon: DaemonProcess) -> list[Path]:
    spool = daemon.data_dir / "spool"
    return sorted(spool.iterdir()) if spool.exists() else []


def _stored_hashes(data_dir: Path) -> dict[str, str]:
    """sha256 column -> sha256 recomputed over the stored bytes, per raw mail."""
    with sqlite3.connect(f"file:{data_dir / 'nexusmail.sqlite3'}?mode=ro", uri=True) as conn:
        return {sha: hashlib.sha256(data).hexdigest()
                for sha, data in conn.execute("SELECT sha256, data FROM raw_messages")}


SESSIONS = 20
MAIL_BYTES = 10 * MIB


@pytest.mark.timeout(600)
async def test_many_large_mails_at_once_keep_memory_bounded(daemon: DaemonProcess) -> None:
    """20 sessions each sending a 10 MB mail at once: the daemon's peak RSS grows by far
    less than the 200 MB sent, every mail is stored byte for byte, no spool file stays."""
    body = _attachment_body(MAIL_BYTES)
    baseline = daemon.status("VmRSS")
    peak = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, daemon.status("VmRSS"))
            await asyncio.sleep(0.02)

    async def deliver(n: int) -> bytes:
        reader, writer = await _start_data(daemon.smtp_port)
        writer.write(_head(n))
        writer.write(body)
        writer.write(b".\r\n")
        await writer.drain()
        reply = await _reply(reader, timeout_s=540)  # RFC 5321 allows 10 minutes
        writer.close()
        return reply

    sampler = asyncio.create_task(sample())
    replies = await asyncio.gather(*(deliver(n) for n in range(SESSIONS)))
    done.set()
    await sampler
    assert all(r.startswith(b"250") for r in replies), replies
    # Forty 20 MB mails grew it by ~115 MB (reads in flight of ~1.5 MB each, one mail
    # being parsed and stored at a few times its size); without spooling, 1.4 GB.
    grown = max(peak, daemon.status("VmHWM")) - baseline
    assert grown < 150 * MIB, f"RSS grew by {grown // MIB} MB"
    assert _spool_files(daemon) == []
    stored = await asyncio.to_thread(_stored_hashes, daemon.data_dir)
    expected = {hashlib.sha256(_head(n) + body).hexdigest() for n in range(SESSIONS)}
    assert set(stored) == expected
    assert all(column == recomputed for column, recomputed in stored.items())
