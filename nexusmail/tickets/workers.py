"""The workers table: the daemons using this store, each by its incarnation id.

A daemon gets a fresh random id at every start, never one derived from the host: two
daemons on one machine, or one restarted in a hurry, must never pass for each other,
or one would take the other's leases for its own. Its heartbeat (last_seen, from the
shared clock of storage.db_time) and what it holds are what health and /metrics show.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from nexusmail.clock import iso
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.storage.db_time import now_plus

# Rows of daemons silent this long are deleted by the next heartbeat of any daemon:
# the table lists the cluster of now, not every start there ever was.
FORGET_AFTER_S = 24 * 3600


def new_incarnation_id() -> str:
    """A fresh id for this process: random, so no restart or twin host reuses one."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class WorkerRow:
    id: str
    started_at: str
    last_seen: str
    holds: Mapping[str, int]


def heartbeat(tx: WriteTx, *, worker_id: str, started_at: datetime, now: datetime,
              holds: Mapping[str, int]) -> None:
    """Record that `worker_id` is alive now and what it holds."""
    shared_now, params = now_plus(tx, now)
    tx.execute(
        "INSERT INTO workers (id, started_at, last_seen, holds)"  # noqa: S608 (constant)
        f" VALUES (?, ?, {shared_now}, ?) ON CONFLICT (id) DO UPDATE"
        " SET last_seen = excluded.last_seen, holds = excluded.holds",
        (worker_id, iso(started_at), *params, json.dumps(dict(holds), sort_keys=True)),
    )
    forget, forget_params = now_plus(tx, now, -FORGET_AFTER_S)
    tx.execute(f"DELETE FROM workers WHERE last_seen < {forget}",  # noqa: S608
               forget_params)


def leave(tx: WriteTx, worker_id: str) -> None:
    """A daemon stopping cleanly: it no longer counts among the live ones."""
    tx.execute("DELETE FROM workers WHERE id = ?", (worker_id,))


async def list_workers(conn: ReadTx) -> list[WorkerRow]:
    """Every daemon that heartbeated lately, most recently started first."""
    rows = await conn.execute_fetchall(
        "SELECT id, started_at, last_seen, holds FROM workers"
        " ORDER BY started_at DESC, id")
    return [WorkerRow(str(r["id"]), str(r["started_at"]), str(r["last_seen"]),
                      json.loads(r["holds"] or "{}")) for r in rows]


async def count_live(conn: ReadTx, now: datetime, within_s: float) -> int:
    """How many daemons heartbeated in the last `within_s` seconds (shared clock)."""
    since, params = now_plus(conn, now, -within_s)
    rows = await conn.execute_fetchall(
        f"SELECT count(*) FROM workers WHERE last_seen >= {since}",  # noqa: S608 (constant)
        params)
    return int(next(iter(rows))[0])
