"""Address rules: which recipients are ours at RCPT (support addresses and their
plus-extensions; anything else is refused: never an open relay, and no bounce to a
forged sender later, backscatter), and what an address typed by a person must look like."""

from __future__ import annotations

from collections.abc import Collection

from nexusmail.i18n import msg


def normalize(address: str) -> str:
    """Lower-case, angle brackets and surrounding space removed."""
    return address.strip().strip("<>").strip().lower()


def base_address(address: str) -> str:
    """support+anything@firm.it -> support@firm.it (RFC 5233 subaddress removed)."""
    local, at, domain = normalize(address).rpartition("@")
    if not at:
        return normalize(address)
    return f"{local.split('+', 1)[0]}@{domain}"


def plus_extension(address: str) -> str | None:
    """The part after '+' in the local part, or None."""
    local = normalize(address).rpartition("@")[0]
    _, plus, extension = local.partition("+")
    return extension if plus else None


def is_support_recipient(address: str, support_addresses: Collection[str]) -> bool:
    return base_address(address) in support_addresses


def check_address(value: str) -> str:
    """The address lower-cased, or ValueError: one rule for every address a person
    types (the API, the admin pages, the CLI, schedule bodies)."""
    local, _, domain = value.partition("@")
    if (
        not local
        or not domain
        or "@" in domain
        or "." not in domain.strip(".")
        or any(c.isspace() or c in "<>,;\"" for c in value)
    ):
        raise ValueError(msg("is not an email address"))
    return value.lower()
