"""Whether a mail's `From:` can be believed enough to let the mail act.

A technician's reply changes an assignment, so the address it comes from must be
exactly one, read the same way by every parser. Forgers exploit parsers that disagree:
`From: luca@firm.it <evil@evil.example>` reads as luca to one parser and as two
addresses to another; so do `<luca@firm.it>evil@evil.example`, a list of two
mailboxes, or a second `From:` header. Such a mail is kept and shown, never obeyed.

A receiving MTA the firm trusts may also say, in Authentication-Results (RFC 8601),
that the From domain failed DMARC: then the From is a forgery by the domain's own
published policy. Pure functions over header values.
"""

from __future__ import annotations

import email.policy
import email.utils
import re
from collections.abc import Sequence

# Longer From values are not parsed at all (the stdlib's header parser is slow on
# hostile input); no honest From is this long.
MAX_FROM_CHARS = 998
# The sender problem of a mail whose From was never checked (the check costs ~0.3 ms
# and only matters for a mail that may act): doubt, so such a mail can never act.
NOT_CHECKED = "From not checked"


def from_problem(values: Sequence[str]) -> str:
    """"" when `values` (every From header's value) name exactly one mailbox that both
    the strict and the lenient parser read alike; else why the sender is in doubt."""
    if len(values) != 1:
        return "no From header" if not values else f"{len(values)} From headers"
    value = values[0]
    if len(value) > MAX_FROM_CHARS:
        return "From header too long to read safely"
    try:
        header = email.policy.default.header_factory("From", value)
        strict = [a.addr_spec.lower() for a in header.addresses]
        defects = list(header.defects)
        lenient = [addr.lower() for _, addr in email.utils.getaddresses([value])]
    except Exception:  # the stdlib's parsers on hostile input: any failure is doubt
        return "From header unreadable"
    if defects:
        return "From header malformed: " + type(defects[0]).__name__
    # A group ("team: luca@firm.it;") or a list ending in a separator is not one plain
    # mailbox, however harmless the address inside it: anything but that is doubted.
    if any(group.display_name is not None for group in header.groups):
        return "From header is a group, not a mailbox"
    if value.rstrip().endswith((",", ";")):
        return "From header has text after the mailbox"
    if len(strict) != 1 or lenient != strict:
        return "From header names other than exactly one mailbox"
    return ""


_METHOD = re.compile(r"\bdmarc\s*=\s*([a-z]+)", re.IGNORECASE)
_HEADER_FROM = re.compile(r"\bheader\.from\s*=\s*([^\s;()]+)", re.IGNORECASE)
MAX_RESULTS_HEADERS = 20


def dmarc_failed(results: Sequence[str], trusted_authserv_id: str, from_domain: str) -> bool:
    """Did the trusted receiving server say that DMARC failed for `from_domain`?

    Only headers whose authserv-id (the first token) is the configured one count: any
    sender can write an Authentication-Results header of its own."""
    if not trusted_authserv_id or not from_domain:
        return False
    for value in results[:MAX_RESULTS_HEADERS]:
        authserv, _, rest = value.strip().partition(";")
        words = authserv.split()  # "mx.firm.it" or "mx.firm.it 1" (with a version)
        if not words or words[0].lower() != trusted_authserv_id.lower():
            continue
        for clause in rest.split(";"):
            method = _METHOD.search(clause)
            if method is None or method.group(1).lower() != "fail":
                continue
            domain = _HEADER_FROM.search(clause)
            if domain is None or domain.group(1).lower().strip(".") == from_domain.lower():
                return True
    return False
