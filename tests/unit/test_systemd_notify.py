"""The sd_notify client: one datagram per state to $NOTIFY_SOCKET, or nothing at all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexusmail.service.systemd_notify import (
    extending_start,
    feed_watchdog,
    notify,
    watchdog_interval_s,
)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    """Not started by systemd (or not Type=notify): a quiet no-op."""
    assert notify("READY=1", environ={}) is False


def test_path_and_abstract_sockets(listener: tuple[str, socket.socket]) -> None:
    """A path is used as is; "@name" is the abstract namespace, as in sd_notify(3)."""
    path, sock = listener
    assert notify("READY=1\nSTATUS=serving", environ={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"
    name = f"nexusmail-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract:
        abstract.bind("\0" + name)
        abstract.settimeout(5)
        assert notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert abstract.recv(4096) == b"STOPPING=1"


def test_a_missing_socket_is_reported_not_raised(tmp_path: Path) -> None:
    """systemd gone: the daemon keeps running."""
    assert notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, None),
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
])
def test_watchdog_interval_is_half_the_timeout(environ: dict[str, str],
                                               expected: float | None) -> None:
    """Pings every WATCHDOG_USEC/2, only when meant for this process."""
    assert watchdog_interval_s(environ) == expected


async def test_no_ping_while_the_check_fails(listener: tuple[str, socket.socket],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A stuck part (the check times out or fails) withholds WATCHDOG=1."""
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    sock.setblocking(False)
    stop = asyncio.Event()
    healthy = asyncio.Event()

    async def check() -> None:
        if not healthy.is_set():
            raise RuntimeError("store writer stuck")

    task = asyncio.create_task(feed_watchdog(stop, 0.05, check))
    await asyncio.sleep(0.2)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
    healthy.set()
    loop = asyncio.get_running_loop()
    assert await asyncio.wait_for(loop.sock_recv(sock, 4096), 5) == b"WATCHDOG=1"
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_slow_start_step_extends_the_start_timeout(
        listener: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    """A step outlasting the interval (a long migration) pushes systemd's start timeout
    ahead with its status; its result comes back as awaited."""
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)

    async def migrate() -> str:
        await asyncio.sleep(0.35)
        return "migrated"

    assert await extending_start(migrate(), "migrating", every_s=0.1, by_s=90) == "migrated"
    sock.setblocking(False)
    sent = []
    with contextlib.suppress(BlockingIOError):
        while True:
            sent.append(sock.recv(4096))
    assert len(sent) >= 2
    assert set(sent) == {b"EXTEND_TIMEOUT_USEC=90000000\nSTATUS=migrating"}


async def test_a_quick_start_step_sends_nothing(
        listener: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual start, well under the interval, leaves systemd's timeout alone; a
    failing step's exception reaches the caller."""
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)

    async def opened() -> int:
        return 1

    async def broken() -> None:
        raise RuntimeError("database is locked")

    assert await extending_start(opened(), "opening", every_s=5) == 1
    with pytest.raises(RuntimeError, match="locked"):
        await extending_start(broken(), "opening", every_s=5)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
