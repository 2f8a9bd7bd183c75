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


@pytest.mark.parametrize(
    ("status", "after_close", "expected"),
    [
        ("closed", True, [Attention.MAIL_AFTER_CLOSE]),
        ("closed", False, []),
        # Reopened: the case is open work again, the flag has done its job.
        ("open", True, [Attention.UNASSIGNED]),
    ],
)
def test_customer_mail_after_close_flags_a_closed_case(
        status: str, after_close: bool, expected: list[Attention]) -> None:
    """A customer's mail to a closed case flags it while it stays closed."""
    assert needs_attention(status=status, assignment_statuses=set(),
                           has_unverified_reply=False,
                           has_mail_after_close=after_close) == expected
