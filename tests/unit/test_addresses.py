"""Recipient rules: support addresses and their plus-extensions, nothing else."""

from __future__ import annotations

import pytest

from nexusmail.mail.addresses import base_address, is_support_recipient, plus_extension

OURS = {"support@firm.it", "assistenza@firm.it"}


@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("support@firm.it", True),
        ("<Support@Firm.IT>", True),
        ("support+r.1.2.abc@firm.it", True),
        ("assistenza+anything@firm.it", True),
        ("support@other.it", False),
        ("sales@firm.it", False),
        ("support@firm.it.evil.com", False),
        ("victim@gmail.com", False),
        ("", False),
    ],
)
def test_is_support_recipient(address: str, accepted: bool) -> None:
    """Only our addresses (any case, any plus-extension) are accepted at RCPT."""
    assert is_support_recipient(address, OURS) is accepted


def test_base_address_and_extension() -> None:
    """The plus-extension is split off the local part, not the domain."""
    assert base_address("Support+Tok@Firm.it") == "support@firm.it"
    assert plus_extension("support+tok+more@firm.it") == "tok+more"
    assert plus_extension("support@firm.it") is None
