"""Who a mail comes from, as the acknowledgement budgets and the loop guard count it.

A robot that answers our acknowledgements from a new plus-address each time
(`bot+1@x`, `bot+2@x`...) or in another letter case is one peer, not a crowd: counted
by its address as written it would never reach a limit. So an address is counted by
its base (the RFC 5233 subaddress removed, lower-case) and by its domain, and an
address that is one of ours (a support address or one of its per-ticket reply
addresses, `support+<token>@`) is recognised as ours: we never write to it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache

from nexusmail.mail.addresses import base_address, normalize


@dataclass(frozen=True)
class Peer:
    """One sender as counted: `address` without its +extension, both lower-case."""

    address: str
    domain: str
    ours: bool          # one of our support addresses or their reply addresses


def peer_of(address: str, support_addresses: Collection[str]) -> Peer:
    """`address` as the budgets and the guard count it (see the module docstring)."""
    local, at, domain = normalize(address).rpartition("@")
    if not at:
        local, domain = normalize(address), ""
    domain = domain.rstrip(".")
    base = base_address(f"{local}@{domain}") if domain else local.split("+", 1)[0]
    return Peer(address=base, domain=domain,
                ours=base in _bases(tuple(support_addresses)))


@lru_cache(maxsize=8)
def _bases(addresses: tuple[str, ...]) -> frozenset[str]:
    """Our addresses as counted; kept per list (the settings' list is read twice per
    new case)."""
    return frozenset(base_address(a) for a in addresses)
