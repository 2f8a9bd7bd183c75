"""Signed reply addresses: bound to assignment, intervention and recipient; keys rotate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nexusmail.tickets.reply_tokens import (
    ReplyToken,
    make_token,
    parse_token,
    reply_address,
    verify_token,
)

KEY, OLD_KEY, OTHER_KEY = b"k" * 32, b"o" * 32, b"x" * 32


@given(st.integers(1, 10**9), st.integers(1, 10**9), st.emails())
def test_round_trip(assignment_id: int, number: int, recipient: str) -> None:
    """A token made for a recipient verifies for that recipient, in any letter case."""
    token = make_token(KEY, assignment_id, number, recipient)
    expected = ReplyToken(assignment_id, number)
    assert verify_token([KEY], token, recipient) == expected
    assert verify_token([KEY], token.upper(), recipient.upper()) == expected
    assert parse_token(token) == expected


@pytest.mark.parametrize(
    ("token", "recipient", "keys"),
    [
        (make_token(KEY, 5, 42, "luca@firm.it"), "mallory@evil.it", [KEY]),  # other recipient
        (make_token(KEY, 5, 42, "luca@firm.it").replace("a5n", "a6n"), "luca@firm.it", [KEY]),
        (make_token(KEY, 5, 42, "luca@firm.it").replace("n42", "n43"), "luca@firm.it", [KEY]),
        (make_token(OTHER_KEY, 5, 42, "luca@firm.it"), "luca@firm.it", [KEY]),  # unknown key
        ("a5n42s" + "0" * 20, "luca@firm.it", [KEY]),
        ("garbage", "luca@firm.it", [KEY]),
        ("", "luca@firm.it", [KEY]),
    ],
)
def test_forged_or_altered_tokens_fail(token: str, recipient: str, keys: list[bytes]) -> None:
    """Changing any bound field, or signing with an unknown key, matches nothing."""
    assert verify_token(keys, token, recipient) is None


def test_rotation_keeps_old_tokens_valid() -> None:
    """Mails signed with a retired-but-listed key are still verified."""
    token = make_token(OLD_KEY, 1, 2, "ion@firm.ro")
    assert verify_token([KEY, OLD_KEY], token, "ion@firm.ro") == ReplyToken(1, 2)


def test_reply_address_is_a_plus_address() -> None:
    """The token rides in the support address's plus-extension."""
    assert reply_address("support@firm.it", "a1n2sabc") == "support+a1n2sabc@firm.it"
