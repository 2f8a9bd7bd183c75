"""Operators: the people who log in to the admin page, and their password hashes.

Passwords are hashed with argon2id (argon2-cffi's defaults: 64 MiB, 3 passes), so a
stolen database does not give the passwords away cheaply. Hashing and verifying cost
tens of milliseconds of CPU: async callers run them in a thread.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from nexusmail.clock import iso
from nexusmail.i18n import msg
from nexusmail.storage.connections import INTEGRITY_ERRORS, ReadTx, WriteTx
from nexusmail.tickets.cases import Conflict, NotFound

# Below this a password is refused: the login rate limit slows guessing, it cannot
# save a four-letter password.
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()

# What each may do, least to most: viewer reads, dispatcher also changes cases,
# customers and schedules, admin also manages operators and tokens.
ROLES = ("viewer", "dispatcher", "admin")
# The columns an Operator is read from, in its fields' order.
OPERATOR_COLUMNS = "id, email, name, password_hash, language, role, own_customers_only"


@functools.cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so the answer takes as long as
    # for a wrong password and does not tell which addresses are operators.
    return _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class Operator:
    id: int
    email: str
    name: str
    password_hash: str = field(default="", repr=False)
    language: str | None = None   # None: the browser's, then [web] default_language
    role: str = "admin"
    # True: they see and act only on interventions of customers whose owner they are.
    own_customers_only: bool = False

    def may(self, role: str) -> bool:
        """Whether their role is `role` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def owner_limit(self) -> str | None:
        """The customer owner their lists and cases are limited to, or None (all)."""
        return self.email if self.own_customers_only else None

    @property
    def display(self) -> str:
        return self.name or self.email


def operator_from_row(row: object) -> Operator:
    """An Operator from a row selected as OPERATOR_COLUMNS."""
    values = list(row)  # type: ignore[call-overload]
    role = values[5] if values[5] in ROLES else "viewer"  # unknown: the least access
    return Operator(values[0], values[1], values[2], values[3], values[4], role,
                    bool(values[6]))


def check_password_rules(password: str) -> None:
    """ValueError naming the rule a new password breaks."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(msg("the password needs at least {count} characters",
                             count=MIN_PASSWORD_CHARS))
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(msg("the password is longer than {count} characters",
                             count=MAX_PASSWORD_CHARS))


def hash_password(password: str) -> str:
    """An argon2id PHC string (blocking: tens of milliseconds)."""
    return _hasher.hash(password)


def verify_password(operator: Operator | None, password: str) -> bool:
    """Whether `password` is the operator's; a missing operator costs the same time."""
    try:
        matched = _hasher.verify(operator.password_hash if operator else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and operator is not None


def default_role(tx: WriteTx) -> str:
    """admin for the first operator (someone must be able to manage the rest),
    dispatcher for the later ones."""
    anyone = tx.execute("SELECT 1 FROM operators LIMIT 1").fetchone()
    return "dispatcher" if anyone else "admin"


def add_operator(
    tx: WriteTx, *, email: str, name: str, password_hash: str, now: datetime,
    language: str | None = None, role: str | None = None, own_customers_only: bool = False,
) -> int:
    """Add an operator; an existing address raises Conflict. Without a role the first
    operator is admin (someone must be able to manage the rest), later ones dispatcher."""
    role = role or default_role(tx)
    if role not in ROLES:
        raise ValueError(f"role: should be one of {', '.join(ROLES)}, not {role!r}")
    try:
        operator_id: int = tx.execute(
            "INSERT INTO operators (email, name, password_hash, language, role,"
            " own_customers_only, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            (email.strip().lower(), name.strip(), password_hash, language, role,
             int(own_customers_only), iso(now), iso(now)),
        ).fetchone()[0]
    except INTEGRITY_ERRORS:
        raise Conflict(msg("an operator with address {email} exists already",
                           email=email)) from None
    return operator_id


def set_password(
    tx: WriteTx, *, email: str, password_hash: str, now: datetime
) -> None:
    changed = tx.execute(
        "UPDATE operators SET password_hash = ?, updated_at = ? WHERE email = ?",
        (password_hash, iso(now), email.strip().lower()),
    ).rowcount
    if not changed:
        raise NotFound(msg("no operator with address {email}", email=email))
    # A new password ends every open session, a stolen cookie's too.
    tx.execute("DELETE FROM operator_sessions WHERE operator_id IN"
               " (SELECT id FROM operators WHERE email = ?)", (email.strip().lower(),))


def set_active(tx: WriteTx, *, email: str, active: bool, now: datetime) -> bool:
    """Retire an operator (no login; their open sessions end at once) or bring them
    back; whether anything changed. NotFound for an unknown address."""
    email = email.strip().lower()
    row = tx.execute("SELECT id, active FROM operators WHERE email = ?", (email,)).fetchone()
    if row is None:
        raise NotFound(msg("no operator with address {email}", email=email))
    if bool(row["active"]) is active:
        return False
    tx.execute("UPDATE operators SET active = ?, updated_at = ? WHERE id = ?",
               (int(active), iso(now), row["id"]))
    if not active:
        tx.execute("DELETE FROM operator_sessions WHERE operator_id = ?", (row["id"],))
    return True


async def find_operator(conn: ReadTx, email: str) -> Operator | None:
    """The active operator with this login address, hash included (for the login)."""
    rows = list(await conn.execute_fetchall(
        f"SELECT {OPERATOR_COLUMNS} FROM operators"  # noqa: S608 - fixed column list
        " WHERE email = ? AND active = 1",
        (email.strip().lower(),),
    ))
    return operator_from_row(rows[0]) if rows else None


async def list_operators(conn: ReadTx) -> list[tuple[int, str, str, bool, str, str, bool]]:
    """id, email, name, active, created_at, role, own_customers_only; oldest first."""
    rows = await conn.execute_fetchall(
        "SELECT id, email, name, active, created_at, role, own_customers_only"
        " FROM operators ORDER BY id"
    )
    return [(r[0], r[1], r[2], bool(r[3]), r[4], r[5], bool(r[6])) for r in rows]


def set_language(tx: WriteTx, *, operator_id: int, language: str | None, now: datetime) -> None:
    """The language the operator reads the pages in (None: their browser's)."""
    tx.execute("UPDATE operators SET language = ?, updated_at = ? WHERE id = ?",
               (language, iso(now), operator_id))
