"""Whether an acknowledgement may go out: the hourly budgets against backscatter.

Thirty mails with forged third-party From: addresses would otherwise get thirty
answers, and a robot answering each acknowledgement would get one per answer. So an
acknowledgement is skipped when its recipient (counted without +extension or case,
nexusmail.mail.peers), the recipient's domain, or all recipients together had their
budget this past hour, and never sent to one of our own addresses. A skipped
acknowledgement is only that: the case is opened and kept all the same.
"""

from __future__ import annotations

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
    """Why no acknowledgement may go to `peer` now, or None when one may. The counts
    are read only as far as needed: most mails stop at their own address's."""
    if peer.ours:
        return AckSkipped.OWN_ADDRESS
    peer_counts.hold_counts(tx)  # held to the commit, which counts this one if it goes
    since = now - BUDGET_WINDOW
    if peer_counts.count_by_address(tx, PeerEvent.ACK, peer.address,
                                    since) >= settings.max_acks_per_hour:
        return AckSkipped.ADDRESS_BUDGET
    if peer_counts.count_by_domain(tx, PeerEvent.ACK, peer.domain,
                                   since) >= settings.max_acks_per_hour_per_domain:
        return AckSkipped.DOMAIN_BUDGET
    if peer_counts.count_all(tx, PeerEvent.ACK, since) >= settings.max_acks_per_hour_total:
        return AckSkipped.TOTAL_BUDGET
    return None


def record_ack(tx: WriteTx, peer: Peer, *, now: datetime) -> None:
    """Count an acknowledgement queued to `peer` against its budgets."""
    peer_counts.record(tx, PeerEvent.ACK, peer, now=now, keep=BUDGET_WINDOW)
