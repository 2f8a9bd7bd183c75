"""Needs-attention flags: pure rules over an intervention's assignments and replies."""

from __future__ import annotations

import pytest

from nexusmail.tickets.attention import Attention, needs_attention


@pytest.mark.parametrize(
    ("status", "assignments", "unverified", "expected"),
    [
        ("open", set(), False, [Attention.UNASSIGNED]),
        ("open", {"pending"}, False, []),
        ("open", {"rejected"}, False, [Attention.REJECTED]),
        # Someone else still may take it, or already did: no reassignment needed yet.
        ("open", {"rejected", "pending"}, False, []),
        ("open", {"rejected", "confirmed"}, False, []),
        ("open", {"unclear"}, False, [Attention.UNCLEAR]),
        ("open", {"confirmed"}, True, [Attention.UNVERIFIED]),
        ("open", set(), True, [Attention.UNVERIFIED, Attention.UNASSIGNED]),
        # A closed case needs no assignment, but a stranger's reply is still shown.
        ("closed", {"rejected", "unclear"}, False, []),
        ("closed", set(), True, [Attention.UNVERIFIED]),
    ],
)
def test_needs_attention(status: str, assignments: set[str], unverified: bool,
                         expected: list[Attention]) -> None:
    """Rejected without a taker, unclear, unverified and unassigned, in a fixed order."""
    assert needs_attention(status=status, assignment_statuses=assignments,
                           has_unverified_reply=unverified) == expected
