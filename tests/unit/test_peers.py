"""The sender as the acknowledgement budgets and the loop guard count it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexusmail.mail.peers import Peer, peer_of

OURS = ("support@firm.test", "help@other.test")


@pytest.mark.parametrize(("address", "expected"), [
    ("bob@example.com", Peer("bob@example.com", "example.com", ours=False)),
    ("bob+anything@example.com", Peer("bob@example.com", "example.com", ours=False)),
    ("Bob+Ticket-42@Example.COM", Peer("bob@example.com", "example.com", ours=False)),
    ("  <BOB@example.com>  ", Peer("bob@example.com", "example.com", ours=False)),
    ("bob+a+b@example.com", Peer("bob@example.com", "example.com", ours=False)),
    ("bob@example.com.", Peer("bob@example.com", "example.com", ours=False)),
    # Our own addresses and the per-ticket reply addresses made from them.
    ("support@firm.test", Peer("support@firm.test", "firm.test", ours=True)),
    ("support+a12n7s0123456789abcdef0123@firm.test",
     Peer("support@firm.test", "firm.test", ours=True)),
    ("SUPPORT+x@FIRM.test", Peer("support@firm.test", "firm.test", ours=True)),
    ("help+y@other.test", Peer("help@other.test", "other.test", ours=True)),
    # Same domain, another mailbox: not ours.
    ("sales@firm.test", Peer("sales@firm.test", "firm.test", ours=False)),
    ("support-team@firm.test", Peer("support-team@firm.test", "firm.test", ours=False)),
    # No domain at all (a broken From): counted by what there is.
    ("bob+x", Peer("bob", "", ours=False)),
])
def test_addresses_are_counted_without_extension_or_case(address: str, expected: Peer) -> None:
    """Plus-extensions, letter case, brackets and a trailing dot do not make a new peer;
    our support addresses and their reply addresses are recognised as ours."""
    assert peer_of(address, OURS) == expected


@given(st.from_regex(r"[a-z0-9._-]{1,12}", fullmatch=True),
       st.from_regex(r"[a-z0-9-]{1,12}\.[a-z]{2,6}", fullmatch=True),
       st.text(alphabet="abcXYZ019-_.", max_size=20))
def test_a_rotating_plus_address_is_always_one_peer(local: str, domain: str,
                                                    extension: str) -> None:
    """Whatever a robot puts after '+', and however it cases the address, it is counted
    as its base address in its domain."""
    plain = peer_of(f"{local}@{domain}", OURS)
    rotated = peer_of(f"{local.upper()}+{extension}@{domain.upper()}", OURS)
    assert rotated == plain == Peer(f"{local}@{domain}", domain, ours=False)
