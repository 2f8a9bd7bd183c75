"""Readiness: can this daemon take mail and do its work right now?

`check_ready` looks at each part and says which one is at fault:
- storage: a round trip through the store's writer within STORAGE_TIMEOUT_S (a stuck
  or dead writer thread shows here), and room for at least one mail of `[limits]
  max_message_bytes` both in the database (SQLite's page limit) and on its disk. A
  no-op commit alone would pass on a full disk: SQLite writes nothing for it.
- smtp: the listener is accepting connections.
- imap: no account whose latest attempt failed (customer mail is then not collected).
- scheduler: a tick completed within OVERDUE_INTERVALS intervals (a stuck loop, or
  ticks failing on every try, would otherwise go unnoticed until a case is missed).
- outbox: pending count and the oldest pending age, reported but never fatal: a
  backlog is the relay's trouble and the mails are safe in the store; alert on
  nexusmail_outbox_oldest_pending_age_seconds instead.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.service.metrics import Backlog
from nexusmail.storage.connections import ReadTx, Storage, WriteTx, dialect_of
from nexusmail.tickets.outbox import pending_backlog
from nexusmail.tickets.store import StorageError

STORAGE_TIMEOUT_S = 3.0
OVERDUE_INTERVALS = 3


@dataclass(frozen=True)
class Probes:
    """How the web app asks the daemon's running parts; None: not part of this app."""

    smtp_listening: Callable[[], bool] | None = None
    scheduler_last_tick: Callable[[], datetime | None] | None = None
    started_at: datetime | None = None   # counts as the last tick before the first


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: list[str]
    parts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"status": "ready" if self.ready else "not ready", "reasons": self.reasons,
                **self.parts}


async def read_backlog(conn: ReadTx, now: datetime) -> Backlog:
    """Pending outbox rows and the age of the oldest (partial index outbox_due)."""
    count, oldest = await pending_backlog(conn)
    age = None if oldest is None else max(
        0.0, (now - datetime.fromisoformat(oldest)).total_seconds())
    return Backlog(count, age)


# What a PostgreSQL server may still store is its own business (its disk, its
# monitoring): reported as this much room, the attachments' disk still checked here.
UNKNOWN_ROOM = 2**62


def storage_room(tx: WriteTx, data_dir: Path | None = None) -> tuple[int, int]:
    """Bytes the database may still grow by (page limit) and bytes free on its disk
    (on PostgreSQL: free on the data dir's disk, where attachments go).

    Runs in the store's writer thread: the page limit is that connection's own, and
    statvfs stays off the event loop."""
    if dialect_of(tx) == "postgresql":
        if tx.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            raise OSError("the database is a read-only standby: mail cannot be stored")
        disk = os.statvfs(data_dir or Path("."))
        return UNKNOWN_ROOM, disk.f_bavail * disk.f_frsize

    def pragma(name: str) -> int:
        return int(tx.execute(f"PRAGMA {name}").fetchone()[0])

    db_room = (pragma("max_page_count") - pragma("page_count") + pragma("freelist_count")
               ) * pragma("page_size")
    main = next(row[2] for row in tx.execute("PRAGMA database_list") if row[1] == "main")
    disk = os.statvfs(Path(main).parent)
    return db_room, disk.f_bavail * disk.f_frsize


async def check_ready(store: Storage, probes: Probes, imap: Mapping[str, Mapping[str, Any]],
                      settings: Settings, now: datetime) -> Readiness:
    reasons: list[str] = []
    parts: dict[str, Any] = {}

    parts["storage"] = storage = await _check_storage(store, settings)
    if not storage["ok"]:
        reasons.append(f"storage: {storage['error']}")

    if probes.smtp_listening is not None:
        listening = probes.smtp_listening()
        parts["smtp"] = {"ok": listening, "listening": listening}
        if not listening:
            reasons.append("smtp: not listening")

    failing = sorted(name for name, state in imap.items() if _imap_failing(state))
    parts["imap"] = {"ok": not failing, "accounts": dict(imap)}
    reasons += [f"imap: {name}: {imap[name].get('last_error')}" for name in failing]

    try:
        async with store.read() as conn:
            backlog: Backlog | None = await read_backlog(conn, now)
    except (StorageError, sqlite3.Error, OSError) as exc:
        backlog = None
        parts["outbox"] = {"ok": True, "error": str(exc)}
    if backlog is not None:
        parts["outbox"] = {"ok": True, "pending": backlog.pending,
                           "oldest_pending_age_s": backlog.oldest_pending_age_s}

    if probes.scheduler_last_tick is not None:
        parts["scheduler"] = scheduler = _check_scheduler(
            probes.scheduler_last_tick(), probes.started_at, settings, now)
        if not scheduler["ok"]:
            reasons.append(f"scheduler: {scheduler['error']}")
    return Readiness(not reasons, reasons, parts)


async def _check_storage(store: Storage, settings: Settings) -> dict[str, Any]:
    need = settings.limits.max_message_bytes
    try:
        db_room, disk_free = await asyncio.wait_for(
            store.write(partial(storage_room, data_dir=settings.storage.data_dir)),
            STORAGE_TIMEOUT_S)
    except TimeoutError:
        return {"ok": False, "error": f"the writer did not answer within {STORAGE_TIMEOUT_S} s"}
    except Exception as exc:  # whatever the writer raised is the answer, not a 500
        return {"ok": False, "error": f"the writer failed: {exc}"}
    part: dict[str, Any] = {"ok": True, "database_room_bytes": db_room,
                            "disk_free_bytes": disk_free}
    if db_room < need:
        part.update(ok=False, error=f"database full: room for {db_room} more bytes, less"
                    f" than one mail of [limits] max_message_bytes ({need})")
    elif disk_free < need:
        part.update(ok=False, error=f"disk full: {disk_free} bytes free, less than one mail"
                    f" of [limits] max_message_bytes ({need})")
    return part


def _imap_failing(state: Mapping[str, Any]) -> bool:
    """The latest attempt failed: not connected, and the last error after the last success."""
    error_at, success = state.get("last_error_at"), state.get("last_success")
    return (not state.get("connected") and error_at is not None
            and (success is None or str(error_at) >= str(success)))


def _check_scheduler(last_tick: datetime | None, started_at: datetime | None,
                     settings: Settings, now: datetime) -> dict[str, Any]:
    interval_s = settings.scheduler.interval_s
    since = last_tick or started_at
    age_s = None if since is None else max(0.0, (now - since).total_seconds())
    overdue = age_s is not None and age_s > OVERDUE_INTERVALS * interval_s
    part: dict[str, Any] = {"ok": not overdue,
                            "last_tick": iso(last_tick) if last_tick else None,
                            "interval_s": interval_s, "overdue": overdue}
    if overdue:
        part["error"] = (f"no tick completed for {round(age_s or 0)} s"
                         f" ({OVERDUE_INTERVALS} x [scheduler] interval_s = {interval_s})")
    return part
