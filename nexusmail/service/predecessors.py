"""Taking over at once what a crashed daemon on this machine held.

A daemon killed mid-pass leaves outgoing mails claimed and IMAP folders leased in its
name; another daemon may take them only when the lease runs out (`[outbound]
lease_s`, a minute by default). That wait protects against a daemon that is merely
slow, which only a lease can tell from a dead one across machines. On one machine the
kernel can tell: every daemon holds an exclusive lock on a file named after its
incarnation id in the data dir's `daemons/` folder for as long as its process lives.
At start, a daemon that can take such a lock knows that its holder is gone (the kernel
drops a lock when the process dies, however it dies), so it gives back that daemon's
outgoing mails and folders and removes its heartbeat row right away. The restart that
systemd makes after a crash then sends the stranded mail within seconds, not after
the lease.

A lock still held means a live daemon (or a child process it forked, still running):
nothing is touched and its leases run out as usual. Daemons on other machines never
share this folder, so for them the lease stays the only rule.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import structlog

from nexusmail.ingest.imap.lease import end_leases_of
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.outbox import release_claims_of
from nexusmail.tickets.workers import leave

log = structlog.get_logger(__name__)

DAEMONS_DIR = "daemons"
LOCK_SUFFIX = ".lock"


@dataclass
class LifeLock:
    """This daemon's own lock file, held open (and locked) until `release`."""

    path: Path
    fd: int
    released: bool = field(default=False)

    def release(self) -> None:
        """On a clean stop: the file goes, then the lock with the descriptor."""
        if self.released:
            return
        self.released = True
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)


def hold_life_lock(data_dir: Path, worker_id: str) -> LifeLock:
    """Create and lock `daemons/<worker_id>.lock`; held while this process lives."""
    folder = data_dir / DAEMONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{worker_id}{LOCK_SUFFIX}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return LifeLock(path, fd)


def dead_predecessors(data_dir: Path) -> list[tuple[str, int]]:
    """The ids of daemons of this data dir whose process is gone, each with its lock
    file's descriptor, now locked by us (close it after the takeover)."""
    folder = data_dir / DAEMONS_DIR
    if not folder.is_dir():
        return []
    dead: list[tuple[str, int]] = []
    for path in sorted(folder.glob(f"*{LOCK_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # its daemon stopped cleanly just now
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: that daemon lives
            os.close(fd)
            continue
        dead.append((path.name.removesuffix(LOCK_SUFFIX), fd))
    return dead


def release_holds(tx: WriteTx, *, worker_id: str, now: datetime) -> tuple[int, int]:
    """Give back what the dead daemon `worker_id` held and drop its heartbeat row.
    Returns (outgoing mails, IMAP folders) given back."""
    mails = release_claims_of(tx, worker_id)
    folders = end_leases_of(tx, worker_id, now)
    leave(tx, worker_id)
    return mails, folders


async def take_over_dead_predecessors(store: Storage, data_dir: Path, now: datetime) -> int:
    """Release the holds of every daemon of `data_dir` that died; return how many."""
    dead = dead_predecessors(data_dir)
    folder = data_dir / DAEMONS_DIR
    for worker_id, fd in dead:
        try:
            mails, folders = await store.write(partial(release_holds, worker_id=worker_id,
                                                       now=now))
            log.info("daemon.predecessor_released", predecessor=worker_id,
                     outbox_rows=mails, imap_folders=folders)
            with contextlib.suppress(FileNotFoundError):
                (folder / f"{worker_id}{LOCK_SUFFIX}").unlink()
        finally:
            os.close(fd)
    return len(dead)
