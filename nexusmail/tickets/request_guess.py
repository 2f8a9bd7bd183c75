"""What a new request by mail is about, read from its subject: the request type of the
firm's list whose name it uses, and whether the customer says it is urgent.

An operator phoning in a request sets type and priority; a mail arrived with neither,
so every mailed case was "normal" with no type and the list could not sort what burns.
The reading is deliberately narrow: whole words of the subject and the first lines, a
type only when exactly one type of the list is named, urgency only from a handful of
words that mean it in Italian, Romanian or English. Anything else stays as before, for
the operator to set. Linear in the text (one pass of a precompiled pattern).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from nexusmail.mail.quote_strip import fold
from nexusmail.storage.connections import WriteTx
from nexusmail.tickets.models import Priority

# How much of the body is read besides the subject: the first lines say what it is.
BODY_CHARS = 500
# "urgente", "urgentissimo", "urgenza", "urgent", "urgență"/"urgenta" folded, "emergenza",
# "emergency", "asap", "subito" is too common in Italian mail to mean it.
_URGENT = re.compile(r"(?<!\w)(?:urgent\w*|urgenz\w*|emergenz\w*|emergency|asap)(?!\w)")


@dataclass(frozen=True)
class Guess:
    request_type: str = ""
    urgent: bool = False


def guess_request(subject: str, body: str, type_names: Iterable[tuple[str, str]]) -> Guess:
    """The type (code) whose name (or code) appears as whole words in the subject or
    the body's start, when exactly one does; whether the customer wrote an urgency word.
    `type_names` holds (code, name) pairs, several per code (one per language)."""
    text = fold(f"{subject[:500]}\n{body[:BODY_CHARS]}")
    named: set[str] = set()
    for code, name in type_names:
        phrase = fold(name.strip())
        if len(phrase) >= 4 and _whole(phrase, text):
            named.add(code)
    return Guess(request_type=named.pop() if len(named) == 1 else "",
                 urgent=_URGENT.search(text) is not None)


def type_names(tx: WriteTx) -> list[tuple[str, str]]:
    """(code, name) for every request type of the list, in each language and as its
    code written as words ("service_schedule" -> "service schedule")."""
    pairs = []
    for row in tx.execute("SELECT code, name_en, name_it, name_ro FROM request_types").fetchall():
        code = str(row[0])
        pairs.append((code, code.replace("_", " ")))
        pairs += [(code, str(name)) for name in row[1:] if name]
    return pairs


def priority_for(guess: Guess, type_priority: str | None) -> Priority:
    """The type's default priority, raised to high when the customer says it is urgent."""
    priority = Priority(type_priority) if type_priority else Priority.NORMAL
    if guess.urgent and priority in (Priority.LOW, Priority.NORMAL):
        return Priority.HIGH
    return priority


def _whole(phrase: str, text: str) -> bool:
    start = text.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        start = text.find(phrase, start + 1)
    return False
