"""The sd_notify protocol: tell systemd we are ready, reloading, stopping, alive.

One datagram of `KEY=value` lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a
leading "@" means Linux's abstract namespace), see sd_notify(3). Without that
variable (not started by systemd, or Type= is not notify) every call does nothing.
Forty lines do not justify a dependency; the sockets are non-blocking, so calling
these from the event loop never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import structlog

log = structlog.get_logger(__name__)

# The watchdog check may take this share of the ping interval before we skip a ping.
CHECK_SHARE = 0.5

# While a slow start step runs (an upgrade's migration copying a large store), systemd's
# start timeout is pushed this far ahead, every EXTEND_EVERY_S.
EXTEND_BY_S = 120.0
EXTEND_EVERY_S = 30.0

T = TypeVar("T")


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1\\nSTATUS=serving"); False when not sent."""
    address = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        log.warning("systemd.bad_notify_socket", notify_socket=address)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(state.encode("utf-8"), address)
    except OSError as exc:  # systemd gone or its queue full: losing a ping beats hanging
        log.warning("systemd.notify_failed", state=state.partition("\n")[0], error=str(exc))
        return False
    return True


def reloading_state() -> str:
    """RELOADING=1 with the CLOCK_MONOTONIC stamp systemd >= 253 asks for (older
    versions ignore the extra line)."""
    return f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to send WATCHDOG=1 (half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises), or None when systemd expects no pings from this process."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if usec <= 0 or (pid and pid != str(os.getpid())):  # meant for another process
        return None
    return usec / 2 / 1_000_000


async def extending_start(step: Awaitable[T], status: str, *,
                          every_s: float = EXTEND_EVERY_S, by_s: float = EXTEND_BY_S) -> T:
    """Await `step`, telling systemd every `every_s` that the start goes on.

    Without it a start step longer than the unit's TimeoutStartSec= (90 s by default)
    gets the daemon killed, and Restart= begins the same step again: an upgrade whose
    migration copies a large store would never finish. The first extension is sent
    only once the step has run `every_s`, so a quick start sends nothing.
    """
    task = asyncio.ensure_future(step)
    while True:
        try:
            done, _ = await asyncio.wait({task}, timeout=every_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            return task.result()
        log.info("daemon.still_starting", status=status)
        notify(f"EXTEND_TIMEOUT_USEC={int(by_s * 1_000_000)}\nSTATUS={status}")


async def feed_watchdog(stop: asyncio.Event, interval_s: float,
                        check: Callable[[], Awaitable[object]] | None = None) -> None:
    """Send WATCHDOG=1 every `interval_s` until `stop` is set.

    That this coroutine runs at all shows the event loop turns; `check` (the store's
    writer answering) must also finish in time, else the ping is skipped and systemd,
    after WatchdogSec without one, restarts a daemon that is stuck rather than dead.
    """
    while not stop.is_set():
        if await _answers(check, interval_s * CHECK_SHARE):
            notify("WATCHDOG=1")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


async def _answers(check: Callable[[], Awaitable[object]] | None, timeout_s: float) -> bool:
    if check is None:
        return True
    try:
        await asyncio.wait_for(check(), timeout_s)
    except Exception as exc:  # any failure, a timeout too, means "do not ping"
        log.warning("systemd.watchdog_check_failed", error=str(exc) or repr(exc))
        return False
    return True
