"""When each operator last opened each case: what is new for them in the list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nexusmail.clock import iso
from nexusmail.storage.connections import ReadTx, WriteTx


def mark_read(tx: WriteTx, operator_id: int, number: int, *, now: datetime) -> None:
    """The operator has seen the case as it is now. Never moved back: of two looks
    written at once (two daemons' pages), the later one stands whichever lands last."""
    tx.execute(
        "INSERT INTO operator_reads (operator_id, intervention_number, read_at)"
        " VALUES (?, ?, ?) ON CONFLICT (operator_id, intervention_number)"
        " DO UPDATE SET read_at = excluded.read_at"
        " WHERE operator_reads.read_at < excluded.read_at",
        (operator_id, number, iso(now)),
    )


async def read_times(conn: ReadTx, operator_id: int,
                     numbers: Sequence[int]) -> dict[int, str]:
    """When the operator last opened each of `numbers` (absent: never)."""
    if not numbers:
        return {}
    marks = ",".join("?" * len(numbers))
    rows = await conn.execute_fetchall(
        "SELECT intervention_number, read_at FROM operator_reads"  # noqa: S608 (marks only)
        f" WHERE operator_id = ? AND intervention_number IN ({marks})",
        [operator_id, *numbers],
    )
    return {int(r[0]): str(r[1]) for r in rows}


def is_new(last_inbound_at: str | None, read_at: str | None) -> bool:
    """Someone wrote since the operator last looked (or they never looked). Times are
    to the second: a mail in the very second of the look counts as new (shown once too
    often rather than missed)."""
    return last_inbound_at is not None and (read_at is None or last_inbound_at >= read_at)
