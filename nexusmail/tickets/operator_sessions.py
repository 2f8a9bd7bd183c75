"""Operators' admin-page sessions, stored: the signed cookie only names one.

A signed cookie alone stays valid until it expires, whatever happens on the server: a
copy taken before logout would keep working for hours. Here the cookie carries a random
session id, the store keeps its hash, and logging out, a new password or deactivating
the operator delete the row, which ends every copy of that cookie at once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from nexusmail.clock import iso
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.tickets.operators import Operator, operator_from_row


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(tx: WriteTx, operator_id: int, *, now: datetime,
                 max_age_s: int, ip: str = "") -> str:
    """A new session for the operator; returns the id for the cookie (never stored).
    Expired sessions of everyone are swept on the way: logins are rare, rows few."""
    tx.execute("DELETE FROM operator_sessions WHERE expires_at <= ?", (iso(now),))
    session_id = secrets.token_urlsafe(32)
    tx.execute(
        "INSERT INTO operator_sessions (id_hash, operator_id, created_at, expires_at, ip)"
        " VALUES (?, ?, ?, ?, ?)",
        (_hash(session_id), operator_id, iso(now),
         iso(now + timedelta(seconds=max_age_s)), ip[:64]),
    )
    return session_id


async def session_operator(conn: ReadTx, session_id: str, *,
                           now: datetime) -> Operator | None:
    """The active operator of a live session, or None (ended, expired, deactivated)."""
    rows = list(await conn.execute_fetchall(
        "SELECT o.id, o.email, o.name, o.password_hash, o.language, o.role,"
        " o.own_customers_only FROM operator_sessions s"
        " JOIN operators o ON o.id = s.operator_id"
        " WHERE s.id_hash = ? AND s.expires_at > ? AND o.active = 1",
        (_hash(session_id), iso(now)),
    ))
    return operator_from_row(rows[0]) if rows else None


def end_session(tx: WriteTx, session_id: str) -> None:
    tx.execute("DELETE FROM operator_sessions WHERE id_hash = ?", (_hash(session_id),))


def end_operator_sessions(tx: WriteTx, operator_id: int) -> int:
    """End every session of one operator (new password, deactivated); how many ended."""
    return tx.execute("DELETE FROM operator_sessions WHERE operator_id = ?",
                      (operator_id,)).rowcount
