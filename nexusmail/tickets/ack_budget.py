"""Whether an acknowledgement may go out: the hourly budgets against backscatter.

Thirty mails with forged third-party From: addresses would otherwise get thirty
answers, and a robot answering each acknowledgement would get one per answer. So an
acknowledgement is skipped when its recipient (counted without +extension or case,
nexusmail.mail.peers), the recipient's domain, or all recipients together had their
budget this past hour, and never sent to one of our own addresses. A skipped
acknowledgement is only that: the case is opened and kept all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from nexusmail.config import MailSettings
from nexusmail.mail.peers import Peer
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets import peer_counts
from nexusmail.tickets.peer_counts import PeerEvent

BUDGET_WINDOW = timedelta(hours=1)


class AckSkipped(StrEnum):
    """Why an acknowledgement that was due did not go out (a metrics label too)."""

    OWN_ADDRESS = "own_address"      # the recipient is one of our addresses: a loop
    ADDRESS_BUDGET = "address_budget"
    DOMAIN_BUDGET = "domain_budget"
    TOTAL_BUDGET = "total_budget"


def ack_refused(tx: WriteTx, peer: Peer, *, now: datetime,
                settings: MailSettings) -> AckSkipped | None:
    """Why no acknowledgement may go to `peer` now, or None when one may: the
    recipient's address first, then its domain, then everyone's."""
    return ask_ack_refused(tx, peer, now=now, settings=settings)()


def ask_ack_refused(tx: WriteTx, peer: Peer, *, now: datetime,
                    settings: MailSettings) -> Callable[[], AckSkipped | None]:
    """`ack_refused`, asked now and read when the returned function is called: a unit
    asks before its other writes so that on PostgreSQL the answer comes back with
    another read of the unit's. Its counts are held from here to the commit, and the
    unit must count no acknowledgement in between (`record_ack`)."""
    if peer.ours:
        return lambda: AckSkipped.OWN_ADDRESS
    peer_counts.hold_counts(tx)  # held to the commit, which counts this one if it goes
    reached = peer_counts.ask_caps_reached(
        tx, PeerEvent.ACK, peer, now - BUDGET_WINDOW,
        address_cap=settings.max_acks_per_hour,
        domain_cap=settings.max_acks_per_hour_per_domain,
        total_cap=settings.max_acks_per_hour_total)
    return lambda: _refusal(reached())


def _refusal(reached: peer_counts.Reached) -> AckSkipped | None:
    if reached.address:
        return AckSkipped.ADDRESS_BUDGET
    if reached.domain:
        return AckSkipped.DOMAIN_BUDGET
    if reached.total:
        return AckSkipped.TOTAL_BUDGET
    return None


def record_ack(tx: WriteTx, peer: Peer, *, now: datetime) -> None:
    """Count an acknowledgement queued to `peer` against its budgets."""
    peer_counts.record(tx, PeerEvent.ACK, peer, now=now, keep=BUDGET_WINDOW)
