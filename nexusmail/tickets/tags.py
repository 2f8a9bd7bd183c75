"""The intervention tag in subjects, "[#42]", and the reply prefixes mail clients add.

Prefixes seen in the field, by client language: Re/Fwd/Fw (en), R/RIF/I (Italian
Outlook: "Risposta", "Riferimento", "Inoltrato"), AW/WG (German), TR (French "Transféré"),
SV (Nordic), Răspuns/Redirecționare (Romanian Outlook), and Re[2]/RE(3) counters.
"""

from __future__ import annotations

import re

# Strict on purpose: "[#" digits "]" and nothing else, so "[# 42]" or "#42" in free
# text never moves a mail into the wrong intervention. 18 digits fit SQLite's int64.
_TAG = re.compile(r"\[#(\d{1,18})\]")
_PREFIX_WORDS = (
    "re", "r", "rif", "i", "fwd", "fw", "aw", "wg", "tr", "sv", "vs", "ref",
    "răspuns", "raspuns", "redirecționare", "redirectionare", "redirecţionare",
)  # fmt: skip
_PREFIXES = re.compile(
    r"^(?:\s*(?:" + "|".join(_PREFIX_WORDS) + r")\s*(?:\[\d+\]|\(\d+\))?\s*:)+\s*",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def format_tag(number: int) -> str:
    """ "[#42]" for intervention 42."""
    if number < 0:
        raise ValueError(f"intervention numbers are not negative (got {number})")
    return f"[#{number}]"


def parse_tag(subject: str) -> int | None:
    """The number in the first "[#n]" anywhere in the subject, or None."""
    match = _TAG.search(subject)
    return int(match.group(1)) if match else None


def strip_reply_prefixes(subject: str) -> str:
    """ "Re: R: Fwd: caldaia" -> "caldaia": drop any run of reply/forward prefixes."""
    return _PREFIXES.sub("", subject, count=1).strip()


def tagged_subject(number: int, subject: str) -> str:
    """ "[#42] subject", moving an existing "[#42]" to the front instead of doubling it."""
    tag = format_tag(number)
    rest = _SPACES.sub(" ", subject.replace(tag, " ")).strip()
    return f"{tag} {rest}" if rest else tag
