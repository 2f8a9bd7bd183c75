"""Managing operators (the admin's work): their role, language, own-customers limit,
retiring and bringing them back, and what the page and the API show of them.

One rule holds on the page and in the API: an admin must remain. Demoting or retiring
the last active admin would leave nobody able to manage operators and tokens but the
command line on the server, so it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage.connections import ReadTx, WriteTx, dialect_of
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.operators import ROLES, set_active


class _Keep(Enum):
    KEEP = "keep"


# A field of OperatorChange left as it is (language None means "the browser's").
KEEP = _Keep.KEEP

_RECORD_COLUMNS = ("id, email, name, role, language, own_customers_only, active,"
                   " created_at, updated_at")


@dataclass(frozen=True)
class OperatorChange:
    """What to change of an operator; KEEP leaves a field as it is."""

    name: str | _Keep = KEEP
    role: str | _Keep = KEEP
    language: str | _Keep | None = KEEP
    own_customers_only: bool | _Keep = KEEP


def ensure_another_admin(tx: WriteTx, operator_id: int) -> None:
    """Conflict unless an active admin other than `operator_id` remains.

    On PostgreSQL the active admins' rows are locked first, so two daemons demoting the
    last two admins at once cannot both see the other one still there."""
    lock = " FOR UPDATE" if dialect_of(tx) == "postgresql" else ""
    admins = tx.execute(
        "SELECT id FROM operators WHERE role = 'admin' AND active = 1"  # noqa: S608
        + lock).fetchall()
    if not any(row[0] != operator_id for row in admins):
        raise Conflict(msg(
            "this is the last active admin: make another operator admin first"))


def _row(tx: WriteTx, email: str) -> Any:
    row = tx.execute("SELECT id, role, active FROM operators WHERE email = ?",
                     (email.strip().lower(),)).fetchone()
    if row is None:
        raise NotFound(msg("no operator with address {email}", email=email))
    return row


def change_operator(tx: WriteTx, email: str, change: OperatorChange, *,
                    now: datetime) -> int:
    """Apply `change` to the operator with this address; their id. NotFound, ValueError
    for an unknown role or language, Conflict when it would demote the last admin."""
    row = _row(tx, email)
    sets: list[str] = []
    values: list[object] = []
    if not isinstance(change.role, _Keep):
        if change.role not in ROLES:
            raise ValueError(f"role: should be one of {', '.join(ROLES)}, not {change.role!r}")
        if row["role"] == "admin" and change.role != "admin" and row["active"]:
            ensure_another_admin(tx, row["id"])
        sets.append("role = ?")
        values.append(change.role)
    if not isinstance(change.name, _Keep):
        sets.append("name = ?")
        values.append(change.name.strip())
    if not isinstance(change.language, _Keep):
        sets.append("language = ?")
        values.append(change.language)
    if not isinstance(change.own_customers_only, _Keep):
        sets.append("own_customers_only = ?")
        values.append(int(change.own_customers_only))
    if sets:
        tx.execute(f"UPDATE operators SET {', '.join(sets)}, updated_at = ?"  # noqa: S608
                   " WHERE id = ?", (*values, iso(now), row["id"]))
    return int(row["id"])


def set_operator_active(tx: WriteTx, email: str, *, active: bool, now: datetime) -> bool:
    """Retire or bring back an operator from the page or the API (see
    operators.set_active); Conflict for the last active admin. The command line on the
    server keeps the unguarded operators.set_active: it is the way back in."""
    row = _row(tx, email)
    if not active and row["active"] and row["role"] == "admin":
        ensure_another_admin(tx, row["id"])
    return set_active(tx, email=email, active=active, now=now)


def _record(row: Any) -> dict[str, Any]:
    return {"id": row[0], "email": row[1], "name": row[2], "role": row[3],
            "language": row[4], "own_customers_only": bool(row[5]), "active": bool(row[6]),
            "created_at": row[7], "updated_at": row[8]}


async def operator_records(conn: ReadTx) -> list[dict[str, Any]]:
    """Every operator, retired ones included, oldest first; never a password hash."""
    rows = await conn.execute_fetchall(
        f"SELECT {_RECORD_COLUMNS} FROM operators ORDER BY id")  # noqa: S608
    return [_record(r) for r in rows]


async def operator_record(conn: ReadTx, *, operator_id: int | None = None,
                          email: str | None = None) -> dict[str, Any] | None:
    """One operator by id or by address, or None."""
    where, value = (("id = ?", operator_id) if operator_id is not None
                    else ("email = ?", (email or "").strip().lower()))
    rows = list(await conn.execute_fetchall(
        f"SELECT {_RECORD_COLUMNS} FROM operators WHERE {where}", (value,)))  # noqa: S608
    return _record(rows[0]) if rows else None
