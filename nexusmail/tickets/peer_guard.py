"""The loop guard: a sender that keeps opening new cases is muted.

A robot answering each acknowledgement (from a new plus-address each time, so the
per-address acknowledgement budget alone never sees one sender) opened 50 cases in
29 seconds. Counted as one peer (nexusmail.mail.peers), a sender that opened
`[mail] mute_after_new_cases` cases within `mute_window_s` is muted at its next mail
that would open one; so is a whole domain at `mute_domain_after_new_cases`, for robots
that change their local part. While muted, such mails are kept (outcome `held`, with
the raw bytes, retried like quarantined mail) but open no case and get no answer;
follow-ups to existing cases still join them. A mute ends when an operator lifts it,
or once the sender has been quiet for the window (each held mail pushes the end
back). The operators get one mail per mute. The state is in the store, so a restart
keeps it; on PostgreSQL the upsert decides which daemon's mail started a mute, so the
operators are told once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog

from nexusmail.clock import iso
from nexusmail.config import Settings
from nexusmail.mail.peers import Peer
from nexusmail.storage.connections import ReadTx, WriteTx
from nexusmail.tickets import peer_counts
from nexusmail.tickets.models import OutboxKind
from nexusmail.tickets.new_requests import own_domain
from nexusmail.tickets.outbox import OutgoingMail, enqueue_mail
from nexusmail.tickets.peer_counts import PeerEvent

log = structlog.get_logger(__name__)


class MuteScope(StrEnum):
    ADDRESS = "address"
    DOMAIN = "domain"


@dataclass(frozen=True)
class Hold:
    """A mail kept back: why (for its inbound row), and whether it started the mute."""

    reason: str
    started_mute: bool


@dataclass(frozen=True)
class MutedPeer:
    scope: MuteScope
    peer: str
    reason: str
    muted_at: str
    muted_until: str
    held: int


def hold_new_case(tx: WriteTx, peer: Peer, *, now: datetime, settings: Settings) -> Hold | None:
    """Whether a mail from `peer` that would open a case must be held instead (and
    the mute started or prolonged); None lets it open its case."""
    mail = settings.mail
    window = timedelta(seconds=mail.mute_window_s)
    peer_counts.hold_counts(tx)  # held to the commit, which counts the case it opens
    scopes = [(scope, key, limit) for scope, key, limit in (
        (MuteScope.ADDRESS, peer.address, mail.mute_after_new_cases),
        (MuteScope.DOMAIN, peer.domain, mail.mute_domain_after_new_cases))
        if key and limit > 0]
    for (scope, key, limit), state in zip(scopes, _mute_states(tx, scopes, now - window),
                                          strict=True):
        if (state.muted_until is not None and state.unmuted_at is None
                and state.muted_until > iso(now)):
            tx.execute("UPDATE muted_peers SET held = held + 1, muted_until = ?"
                       " WHERE kind = ? AND peer = ?", (iso(now + window), scope, key))
            return Hold(_held_reason(scope, key), started_mute=False)
        opened = state.opened
        if state.unmuted_at is not None:
            # An operator's unmute starts the count afresh: the cases that caused the
            # mute must not mute the sender again at its next mail. (The store keeps
            # seconds: from the next one, so a case of the very second of the unmute is
            # not counted.)
            since = max(now - window,
                        datetime.fromisoformat(state.unmuted_at) + timedelta(seconds=1))
            opened = (peer_counts.count_by_address(tx, PeerEvent.CASE, key, since)
                      if scope is MuteScope.ADDRESS
                      else peer_counts.count_by_domain(tx, PeerEvent.CASE, key, since))
        if opened >= limit:
            reason = (f"opened {opened} new cases within {mail.mute_window_s // 60} minutes")
            started = _mute(tx, scope, key, reason, now=now, until=now + window)
            if started:
                log.warning("peer.muted", scope=str(scope), peer=key, opened=opened,
                            window_s=mail.mute_window_s)
                _alert_operators(tx, scope, key, reason, now=now, settings=settings)
            return Hold(_held_reason(scope, key), started_mute=started)
    return None


@dataclass(frozen=True)
class _MuteState:
    """A scope's mute row (None, None: there is none) and the cases it opened within
    the window."""

    muted_until: str | None
    unmuted_at: str | None
    opened: int


def _mute_states(tx: WriteTx, scopes: list[tuple[MuteScope, str, int]],
                 window_start: datetime) -> list[_MuteState]:
    """Every scope's mute and count in one statement: on PostgreSQL each statement read
    is a round trip the one writer waits for, and these were four per new case."""
    if not scopes:
        return []
    columns: list[str] = []
    params: list[str] = []
    for scope, key, _ in scopes:
        count = (peer_counts.COUNT_BY_ADDRESS if scope is MuteScope.ADDRESS
                 else peer_counts.COUNT_BY_DOMAIN)
        columns += ["(SELECT muted_until FROM muted_peers WHERE kind = ? AND peer = ?)",
                    "(SELECT unmuted_at FROM muted_peers WHERE kind = ? AND peer = ?)",
                    f"({count})"]
        params += [scope, key, scope, key, PeerEvent.CASE, key, iso(window_start)]
    row = tx.execute(f"SELECT {', '.join(columns)}", params).fetchone()
    return [_MuteState(row[n], row[n + 1], int(row[n + 2])) for n in range(0, len(row), 3)]


def record_new_case(tx: WriteTx, peer: Peer, *, now: datetime, settings: Settings) -> None:
    """Count a case `peer`'s mail opened."""
    if settings.mail.mute_after_new_cases == 0 and settings.mail.mute_domain_after_new_cases == 0:
        # The guard is off: nothing reads these counts (switched on by a reload, it
        # counts from then), and the insert was a statement per new case for nothing.
        return
    peer_counts.record(tx, PeerEvent.CASE, peer, now=now,
                       keep=timedelta(seconds=settings.mail.mute_window_s))


def unmute(tx: WriteTx, scope: MuteScope, peer: str, *, operator: str, now: datetime) -> bool:
    """Lift a mute; False when `peer` was not muted (already lifted, or over)."""
    done = tx.execute("UPDATE muted_peers SET unmuted_at = ?, unmuted_by = ?"
                      " WHERE kind = ? AND peer = ? AND unmuted_at IS NULL AND muted_until > ?"
                      " RETURNING peer", (iso(now), operator, scope, peer, iso(now))).fetchone()
    if done is not None:
        log.info("peer.unmuted", scope=str(scope), peer=peer, operator=operator)
    return done is not None


async def active_mutes(conn: ReadTx, now: datetime) -> list[MutedPeer]:
    """The mutes in force, most recent first (the admin page lists them)."""
    rows = await conn.execute_fetchall(
        "SELECT kind, peer, reason, muted_at, muted_until, held FROM muted_peers"
        " WHERE unmuted_at IS NULL AND muted_until > ? ORDER BY muted_at DESC, peer",
        (iso(now),))
    return [MutedPeer(MuteScope(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


async def count_active(conn: ReadTx, now: datetime) -> int:
    rows = list(await conn.execute_fetchall(
        "SELECT count(*) FROM muted_peers WHERE unmuted_at IS NULL AND muted_until > ?",
        (iso(now),)))
    return int(rows[0][0])


def _held_reason(scope: MuteScope, key: str) -> str:
    what = f"the sender {key}" if scope is MuteScope.ADDRESS else f"the domain {key}"
    return f"held: {what} is muted (it kept opening new cases); unmute it, then retry"


def _mute(tx: WriteTx, scope: MuteScope, key: str, reason: str, *, now: datetime,
          until: datetime) -> bool:
    """Start a mute; False when another writer started it first (no second alert)."""
    row = tx.execute(
        "INSERT INTO muted_peers (kind, peer, reason, muted_at, muted_until, held)"
        " VALUES (?, ?, ?, ?, ?, 1)"
        " ON CONFLICT (kind, peer) DO UPDATE SET reason = excluded.reason,"
        " muted_at = excluded.muted_at, muted_until = excluded.muted_until, held = 1,"
        " unmuted_at = NULL, unmuted_by = ''"
        " WHERE muted_peers.unmuted_at IS NOT NULL OR muted_peers.muted_until <= ?"
        " RETURNING peer",
        (scope, key, reason, iso(now), iso(until), iso(now))).fetchone()
    if row is None:  # muted meanwhile: this mail is one more held
        tx.execute("UPDATE muted_peers SET held = held + 1 WHERE kind = ? AND peer = ?",
                   (scope, key))
    return row is not None


def _alert_operators(tx: WriteTx, scope: MuteScope, key: str, reason: str, *,
                     now: datetime, settings: Settings) -> None:
    """One mail per operator address, through the outbox like every mail we send."""
    domain = own_domain(settings)
    for operator in settings.mail.operator_addresses:
        enqueue_mail(tx, OutgoingMail(
            kind=OutboxKind.PEER_MUTED, recipient=operator, template="peer_muted",
            language=settings.mail.default_language,
            context={"scope": str(scope), "peer": key, "reason": reason,
                     "window_minutes": settings.mail.mute_window_s // 60},
        ), now=now, domain=domain)
