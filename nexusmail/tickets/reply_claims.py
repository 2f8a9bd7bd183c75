"""Whether a mail can name an assignment at all: the cheap test before the costly reads.

A mail names an assignment only through a plus-address (the signed Reply-To token),
In-Reply-To/References (our assignment mail's Message-ID) or a subject tag `[#n]`;
`assignments.find_assignment_for_reply` looks at nothing else. Any other mail cannot be
a technician's answer, so reading its verdict and checking its From strictly would be
wasted: on the ingest benchmark's corpus that was ~1.1 ms of the parse worker's CPU per
mail for the 84% of mails that are new requests. Pure, and light enough for the parse
worker to import.
"""

from __future__ import annotations

from collections.abc import Sequence

from nexusmail.mail.addresses import plus_extension
from nexusmail.mail.parsed import ParsedMail
from nexusmail.tickets.tags import parse_tag


def may_name_assignment(mail: ParsedMail, envelope_to: Sequence[str]) -> bool:
    """False only when no token, no reference and no tag could match an assignment."""
    if mail.in_reply_to or mail.references:
        return True
    if parse_tag(mail.subject) is not None:
        return True
    # Any extension at all: whether it is a valid token for one of our addresses is for
    # the matcher, which has the keys and the settings.
    return any(plus_extension(address)
               for address in (*envelope_to, *mail.to_addrs, *mail.cc_addrs))
