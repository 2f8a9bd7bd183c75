"""What a new request by mail is about, read from its subject: the request type of the
firm's list whose name it uses, and whether the customer says it is urgent.

An operator phoning in a request sets type and priority; a mail arrived with neither,
so every mailed case was "normal" with no type and the list could not sort what burns.
The reading is deliberately narrow: whole words of the subject and the first lines, a
type only when exactly one type of the list is named, urgency only from a handful of
words that mean it in Italian, Romanian or English. Anything else stays as before, for
the operator to set. Linear in the text (one pass of a precompiled pattern).

The mail's side (`request_text`: folding, the urgency words) needs nothing of the store,
so ingest works it out in the parse step, off the store's one writer; the writer reads
the list's names and matches them, their folded phrases kept for as long as the list
reads the same (read each time, so another daemon's or the CLI's edit counts at once).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from nexusmail.mail.quote_strip import fold
from nexusmail.tickets.models import Priority

if TYPE_CHECKING:  # the parse step imports this module, and needs no store
    from nexusmail.storage.connections import DbRow, WriteTx

# How much of the body is read besides the subject: the first lines say what it is.
BODY_CHARS = 500
# "urgente", "urgentissimo", "urgenza", "urgent", "urgență"/"urgenta" folded, "emergenza",
# "emergency", "asap", "subito" is too common in Italian mail to mean it.
_URGENT = re.compile(r"(?<!\w)(?:urgent\w*|urgenz\w*|emergenz\w*|emergency|asap)(?!\w)")


@dataclass(frozen=True)
class Guess:
    request_type: str = ""
    urgent: bool = False


@dataclass(frozen=True)
class RequestText:
    """What guessing reads of a mail: the subject and the body's start, folded, and
    whether they hold an urgency word."""

    folded: str
    urgent: bool


# A type's (code, folded phrase): a name or code of the list, as matched.
Phrases = tuple[tuple[str, str], ...]


def request_text(subject: str, body: str) -> RequestText:
    """The part of a mail `guess_from` reads (pure: the parse step works it out)."""
    text = fold(f"{subject[:500]}\n{body[:BODY_CHARS]}")
    return RequestText(text, _URGENT.search(text) is not None)


def guess_request(subject: str, body: str, type_names: Iterable[tuple[str, str]]) -> Guess:
    """The type (code) whose name (or code) appears as whole words in the subject or
    the body's start, when exactly one does; whether the customer wrote an urgency word.
    `type_names` holds (code, name) pairs, several per code (one per language)."""
    return guess_from(request_text(subject, body), phrases_of(tuple(type_names)))


def guess_from(text: RequestText, phrases: Phrases) -> Guess:
    """`guess_request` over a mail's prepared text and the list's folded phrases."""
    named = {code for code, phrase in phrases if _whole(phrase, text.folded)}
    return Guess(request_type=named.pop() if len(named) == 1 else "", urgent=text.urgent)


@lru_cache(maxsize=8)
def phrases_of(type_names: tuple[tuple[str, str], ...]) -> Phrases:
    """The (code, folded name) pairs worth matching: a name under four letters would
    match inside too many sentences. Kept per list (a list rarely changes, and folding
    every name again was work the store's writer did at every new case)."""
    folded = ((code, fold(name.strip())) for code, name in type_names)
    return tuple((code, phrase) for code, phrase in folded if len(phrase) >= 4)


def type_phrases(tx: WriteTx) -> Phrases:
    """The folded phrases of the request types of the list as it is now."""
    return ask_type_phrases(tx)()


@dataclass(frozen=True)
class TypeList:
    """The list of request types as one read gives it: the phrases a guess matches, and
    each code's names by language (for the mails that name the guessed type)."""

    phrases: Phrases
    names: dict[str, dict[str, str]]

    def name(self, code: str, language: str) -> str:
        """Type `code`'s name in `language`, else in English, else the code; "" for none."""
        names = self.names.get(code, {})
        return names.get(language) or names.get("en") or code


def ask_type_phrases(tx: WriteTx) -> Callable[[], Phrases]:
    """`type_phrases`, asked now and read when called."""
    answer = ask_type_list(tx)
    return lambda: answer().phrases


def ask_type_list(tx: WriteTx) -> Callable[[], TypeList]:
    """The list's phrases and names, asked now and read when called. On PostgreSQL the
    question goes out at once and its answer comes back with the next result the unit
    reads, rather than in a round trip of its own for the one writer to wait for."""
    cursor = tx.execute("SELECT code, name_en, name_it, name_ro FROM request_types"
                        " ORDER BY code")

    def answer() -> TypeList:
        rows = cursor.fetchall()
        names = {str(r[0]): {lang: str(r[i]) for i, lang in enumerate(("en", "it", "ro"), 1)
                             if r[i]} for r in rows}
        return TypeList(phrases_of(_type_pairs(rows)), names)
    return answer


def type_names(tx: WriteTx) -> tuple[tuple[str, str], ...]:
    """(code, name) for every request type of the list, in each language and as its
    code written as words ("service_schedule" -> "service schedule")."""
    return _type_pairs(tx.execute("SELECT code, name_en, name_it, name_ro FROM request_types"
                                  " ORDER BY code").fetchall())


def _type_pairs(rows: Iterable[DbRow]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for row in rows:
        code = str(row[0])
        pairs.append((code, code.replace("_", " ")))
        pairs += [(code, str(name)) for name in row[1:] if name]
    return tuple(pairs)


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
