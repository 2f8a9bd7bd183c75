"""API bearer tokens: created once and shown once, stored only as their sha256.

A token is 32 random bytes, so a plain hash is enough (no salt or slow KDF needed:
nobody can guess their way to a preimage). Looking a token up by its hash means the
comparison is done by the database index on a digest, which leaks nothing useful
about the token itself through timing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound
from nexusmail.tickets.operators import OPERATOR_COLUMNS, Operator, operator_from_row


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    created_at: str
    revoked_at: str | None
    # The operator the token acts as (their role and visibility), or None: full access.
    operator: Operator | None = None

    @property
    def author(self) -> str:
        """Who acted, as the thread records it: the token, and the operator behind it."""
        if self.operator is None:
            return f"api:{self.name}"
        return f"api:{self.name} ({self.operator.email})"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(tx: WriteTx, name: str, now: datetime, operator: str | None = None) -> str:
    """Store a new token under `name` (runs in Store.write); return the token itself,
    which is never stored and cannot be shown again. With `operator` (an active
    operator's email) the token acts as them; NotFound when there is no such operator."""
    name = name.strip()
    if not name:
        raise ValueError("a token needs a name")
    operator_id = None
    if operator is not None:
        row = tx.execute("SELECT id FROM operators WHERE email = ? AND active = 1",
                         (operator.strip().lower(),)).fetchone()
        if row is None:
            raise NotFound(msg("no active operator with address {email}", email=operator))
        operator_id = row[0]
    token = secrets.token_urlsafe(32)
    tx.execute(
        "INSERT INTO api_tokens (name, token_sha256, created_at, operator_id)"
        " VALUES (?, ?, ?, ?)",
        (name, token_digest(token), iso(now), operator_id),
    )
    return token


def revoke_token(tx: WriteTx, token_id: int, now: datetime) -> None:
    """Refuse a token from now on (runs in Store.write); the row stays for the record."""
    row = tx.execute("SELECT revoked_at FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    if row is None:
        raise NotFound(msg("token {id} does not exist", id=token_id))
    if row[0] is not None:
        raise Conflict(msg("token {id} is already revoked", id=token_id))
    tx.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (iso(now), token_id))


async def list_tokens(conn: ReadTx) -> list[TokenInfo]:
    """Every token ever made, revoked ones included, without their secrets, each with
    the operator it acts as (retired ones too: the list says whom it was made for)."""
    rows = await conn.execute_fetchall(
        "SELECT t.id, t.name, t.created_at, t.revoked_at, o.id, o.email, o.name, '',"
        " o.language, o.role, o.own_customers_only"
        " FROM api_tokens t LEFT JOIN operators o ON o.id = t.operator_id ORDER BY t.id"
    )
    return [TokenInfo(r[0], r[1], r[2], r[3],
                      None if r[4] is None else operator_from_row(list(r)[4:]))
            for r in rows]


async def find_token(conn: ReadTx, token: str) -> TokenInfo | None:
    """The live (not revoked) token `token` is, or None; its name says who acted. A
    token made for an operator dies with their access: None once they are disabled."""
    if not token:
        return None
    rows = list(
        await conn.execute_fetchall(
            "SELECT id, name, created_at, revoked_at, operator_id FROM api_tokens"
            " WHERE token_sha256 = ? AND revoked_at IS NULL",
            (token_digest(token),),
        )
    )
    if not rows:
        return None
    r = rows[0]
    operator = None
    if r[4] is not None:
        found = list(await conn.execute_fetchall(
            f"SELECT {OPERATOR_COLUMNS} FROM operators"  # noqa: S608 - fixed column list
            " WHERE id = ? AND active = 1", (r[4],)))
        if not found:
            return None
        operator = operator_from_row(found[0])
    return TokenInfo(r[0], r[1], r[2], r[3], operator)


async def token_is_valid(conn: ReadTx, token: str) -> bool:
    """True when `token` was issued and is not revoked."""
    return await find_token(conn, token) is not None
