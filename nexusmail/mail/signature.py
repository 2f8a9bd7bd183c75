"""Where a technician's signature starts in what they wrote.

A reply from a phone or a desktop client often ends in a closing greeting, a name, a
phone number and the firm's slogan, and slogans say things like "problema risolto in
24h" or "sempre disponibili". The verdict and the hours are read above that point
only. The signature starts at the first line after some written text that is a
closing greeting ("Saluti", "Cu stimă,"), a bare name ("Mario Rossi") or a contact
line (phone, address, web site). Pure and one pass over the lines.
"""

from __future__ import annotations

import re

from nexusmail.mail.quote_strip import fold

__all__ = ["CLOSING", "signature_start"]

# A closing greeting on its own line (maybe with the name after a comma).
CLOSING = re.compile(
    r"^(?:grazie(?: mille)?|saluti|cordiali saluti|distinti saluti|buona giornata|a presto"
    r"|buon lavoro|thanks(?: a lot)?|thank you|regards|best(?: regards)?|kind regards|cheers"
    r"|multumesc(?: frumos)?|mersi|cu stima|o zi buna|toate cele bune|salutari|numai bine"
    r"|cu respect)"
    r"\b[\s,.!]*[^\W\d_]*(?: [^\W\d_]+)?[.!]?$"
)
# Two to four capitalised words and nothing else: "Mario Rossi", "Ion Popescu".
_NAME = re.compile(r"^[A-ZÀ-ÝĂÂÎȘȚŞŢ][^\W\d_]+(?: [A-ZÀ-ÝĂÂÎȘȚŞŢ][^\W\d_'.-]*){1,3}$")
_CONTACT = re.compile(
    r"^(?:tel|tel\.|cell|cellulare|mob|mobile|phone|telefon|fax|e-?mail|www\.|https?:)\b"
    r"|@[\w-]+\.\w|\+\d{2}[\s\d]{6,}|\bwww\.|\bp\.?\s?iva\b|\bcui\b|\bcif\b"
)
_LONGEST_SIGNATURE_LINE = 120   # a signature's lines are short; prose is not one


def signature_start(lines: list[str]) -> int:
    """Index of the signature's first line in `lines`, or len(lines) when none."""
    written = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if written and len(stripped) <= _LONGEST_SIGNATURE_LINE:
            folded = fold(stripped)
            if CLOSING.match(folded) or _NAME.match(stripped) or _CONTACT.search(folded):
                return index
        written = True
    return len(lines)
