"""A technician's reply to an assignment mail, read as confirmed, rejected or unclear.

The verdict comes only from what the technician wrote (see quote_strip): the quoted
assignment says both CONFIRM and REJECT. Technicians answer from phones, in Italian,
Romanian or English, mostly with the verdict word opening the reply ("OK, ci sono
giovedì", "Rifiuto: sono in ferie", "Nu pot, sunt la alt client"). When in doubt we say
UNCLEAR: the assignment then stays as it was and an operator reads the reply, which is
cheaper than a wrongly confirmed visit. Pure functions: no I/O, no clock.

How a reply is read:
0. Only the first few thousand characters of what the technician wrote count (the
   verdict opens a reply), so a reply with a megabyte on one line costs no more than a
   short one: everything here is linear in what it reads.
1. The first of its first few non-blank lines that holds a verdict phrase decides; but
   a confirmation is UNCLEAR when any of those lines makes it conditional, uncertain or
   deferred ("not sure", "I'll let you know when I'm available", "se riesco", "poate"):
   a false confirmation is the worst mistake (the operator thinks the job is covered).
   A line that is a leftover header of the quote ("Da: Dispatch <d@firm.it>") says
   nothing: its "Da" is Italian "from", not Romanian "yes".
2. Phrases come from one table, matched on folded text (lower case, no diacritics).
   Longer phrases are listed first so that "non posso confermare", "no problem" and
   "non ci sono" are read whole and win over the words inside them.
3. The words the assignment mail asks for (confirm/confermo/refuz...) outrank generic
   ones (ok, sì, no, non posso...): "Confermo, ma non posso portare la scala" confirms.
   Both polarities at the same rank is UNCLEAR, and so is a phrase in a question
   ("Confermo? o rifiuto?", "Posso confermare domani?").
4. The reason is the rest of that line after the phrase plus the following lines,
   without a closing greeting and the name below it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum, StrEnum

from nexusmail.mail.html import html_to_text
from nexusmail.mail.quote_strip import cut_html_quote, fold, has_html_quote, strip_quote

__all__ = ["ReplyReading", "Verdict", "read_reply", "strip_quote"]


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class ReplyReading:
    verdict: Verdict
    reason: str   # "" when unclear or when nothing follows the verdict phrase
    body: str     # what the technician wrote: strip_quote of the text (or HTML) part


class _Where(Enum):
    ANYWHERE = "anywhere"
    CLAUSE_START = "clause"   # first word of a clause: "sure" but not "make sure"
    ALONE = "alone"           # a whole clause: "Sì." / "Da, vin" but not "si è rotto"


# (group, verdict or None for "says nothing", explicit?, where, phrases)
# Explicit phrases are the answers the assignment mail asks for.
_W = r"\w+\s+"
_CONFIRM_STEMS = r"(?:confirm|conferm|accept|accett)\w*"
_TABLE: tuple[tuple[str, Verdict | None, bool, _Where, tuple[str, ...]], ...] = (
    # Neither, and a veto on the reply's other phrases: doubt, a condition, a promise to
    # answer later, waiting for someone else's confirmation.
    ("neutral", None, False, _Where.ANYWHERE, (
        r"not sure", r"no idea", r"(?:i )?don'?t know", r"(?:i'?ll|i will|will) (?:\w+ )?"
        r"(?:confirm|let you know)", r"(?:waiting for|awaiting) (?:the |a )?confirm\w*",
        r"let you know", r"get back to you", r"maybe", r"perhaps", r"probably", r"might",
        r"if", r"unless", r"provided", r"depends", r"when i(?:'?m| am) (?:free|available)",
        r"not yet", r"hopefully", r"i think", r"should be able",
        r"non (?:lo )?so", r"non sono sicur[oa]", r"non so se", r"(?:ti|vi) faccio sapere",
        r"(?:ti|vi) (?:faro|farei) sapere", r"(?:ti|vi) (?:ri)?(?:sento|scrivo|chiamo)",
        r"forse", r"magari", r"probabilmente", r"dipende", r"a meno che", r"non ancora",
        r"se (?:riesco|posso|sono|ci sono|mi|non|e|va|tutto|il|la|ho|hai|serve)",
        r"quando (?:sono|saro|saro') (?:libero|libera|disponibile)", r"spero",
        r"(?:ti|vi) confermo (?:domani|dopo|piu tardi|stasera|in giornata|entro)",
        r"(?:attendo|aspetto|in attesa di?) (?:la )?conferm\w*",
        r"nu (?:stiu|sunt sigur\w*)", r"(?:iti|va) (?:confirm|spun) (?:maine|mai tarziu|diseara"
        r"|dupa)", r"(?:astept|asteptam) (?:\w+ )?confirmar\w*",
        r"(?:te|va) anunt", r"(?:iti|va) (?:dau de stire|scriu|sun)", r"poate", r"probabil",
        r"daca", r"depinde", r"cand (?:sunt|voi fi) (?:liber|libera|disponibil\w*)",
        r"inca nu", r"sper",
    )),
    # Negated confirm: "can't confirm", "non posso confermare", "nu pot confirma".
    ("negated", Verdict.REJECTED, True, _Where.ANYWHERE, (
        r"(?:can'?t|cannot|can not|could not|couldn'?t|won'?t|will not|unable to|not able to"
        r"|do not|don'?t|not|non posso|non riesco a|non|nu pot|nu)\s+(?:" + _W + r"){0,2}?"
        + _CONFIRM_STEMS,
    )),
    ("agreeing", Verdict.CONFIRMED, False, _Where.ANYWHERE, (
        r"no problems?", r"not a problem", r"nessun problema", r"non c'e (?:nessun )?problema",
        r"nu (?:e|este) (?:nicio )?problema", r"nicio problema",
    )),
    ("refusing", Verdict.REJECTED, False, _Where.ANYWHERE, (
        r"can'?t", r"cannot", r"can not", r"unable", r"not available", r"unavailable",
        r"not possible", r"impossible", r"won'?t be able", r"not ok(?:ay)?",
        r"(?:do not|don'?t) agree", r"no,? thanks", r"non posso", r"non riesco",
        r"non ci sono", r"non vengo", r"non (?:sono )?disponibile", r"impossibile",
        r"non (?:e|e') possibile", r"non va bene", r"non sono d'?accordo", r"no,? grazie",
        r"nu pot", r"nu sunt disponibil\w*", r"indisponibil\w*", r"nu (?:vin|ajung)",
        r"nu (?:e|este) posibil", r"imposibil", r"nu sunt de acord", r"nu,? multumesc",
    )),
    ("accepting", Verdict.CONFIRMED, False, _Where.ANYWHERE, (
        r"ok(?:ay|ey|i)?", r"yes", r"yep", r"yeah", r"agreed", r"i'?m available",
        r"i am available", r"va bene", r"d'?accordo", r"ci sono", r"sono disponibile",
        r"de acord", r"sunt disponibil\w*",
    )),
    ("confirm", Verdict.CONFIRMED, True, _Where.ANYWHERE, (_CONFIRM_STEMS,)),
    ("reject", Verdict.REJECTED, True, _Where.ANYWHERE, (
        r"reject\w*", r"declin\w*", r"rifiut\w*", r"respin\w*", r"refuz\w*",
    )),
    ("sure", Verdict.CONFIRMED, False, _Where.CLAUSE_START, (
        r"sure", r"certo", r"certamente", r"sigur", r"desigur",
    )),
    ("yes_word", Verdict.CONFIRMED, False, _Where.ALONE, (r"si", r"da")),
    ("no_word", Verdict.REJECTED, False, _Where.ALONE, (r"no", r"nope", r"nu")),
)
_PHRASES = re.compile("|".join(
    rf"(?P<{name}>\b(?:{'|'.join(phrases)})\b)" for name, _, _, _, phrases in _TABLE
))
_RULES = {name: (verdict, explicit, where) for name, verdict, explicit, where, _ in _TABLE}

_LINES_READ = 5              # the verdict opens the reply; a later "no" is about something else
MAX_VERDICT_CHARS = 4000     # what the verdict is read from: the opening of the reply
# A header line left behind by a quote its client marked oddly: "Da: X <x@y>" (Italian
# "From"), "To: x@y". It names an address, so it is no one's answer.
_HEADER_RESIDUE = re.compile(r"^[\w *]{1,16}:\s.{0,200}@[^\s@]+\.\w+")
_CLAUSE_ENDS = ",.;:!?-\u2013\u2014(\n"
_AFTER_ALONE = ",.;:!-\u2013\u2014)"
_STOP_MARKS = frozenset(".!?,;:\n")
_LEADING_PUNCTUATION = re.compile(r"^[\s:;,.!\-\u2013\u2014)]+")
# A closing greeting on its own line (maybe with the name after a comma); it and the
# short lines below it (name, phone) are not part of the reason.
_CLOSING = re.compile(
    r"^(?:grazie(?: mille)?|saluti|cordiali saluti|distinti saluti|buona giornata|a presto"
    r"|thanks(?: a lot)?|thank you|regards|best(?: regards)?|kind regards|cheers"
    r"|multumesc(?: frumos)?|mersi|cu stima|o zi buna|toate cele bune|salutari|numai bine)"
    r"\b[\s,.!]*[^\W\d_]*(?: [^\W\d_]+)?[.!]?$"
)


@dataclass(frozen=True)
class _Hit:
    verdict: Verdict
    explicit: bool
    end: int


def read_reply(text: str | None, html: str | None = None) -> ReplyReading:
    """Read a technician's reply. When its HTML marks the quote the way a client does
    (Gmail's, Yahoo's, Thunderbird's or Outlook's markers, a blockquote), the technician's
    part is taken by that structure; otherwise from the text part by the text rules."""
    if html and (has_html_quote(html) or text is None or not text.strip()):
        text = html_to_text(cut_html_quote(html))
    elif text is None:
        text = ""
    body = strip_quote(text)
    lines = unicodedata.normalize("NFC", body[:MAX_VERDICT_CHARS]).split("\n")
    decided: tuple[list[_Hit], int] | None = None
    doubted = False
    read = 0
    for index, line in enumerate(lines):
        if not line.strip() or _HEADER_RESIDUE.match(fold(line.strip())):
            continue
        hits, vetoed = _hits(line)
        doubted = doubted or vetoed
        if hits and decided is None:
            decided = (hits, index)
        read += 1
        if read == _LINES_READ:
            break
    if decided is None:
        return ReplyReading(Verdict.UNCLEAR, "", body)
    hits, index = decided
    reading = _decide(hits, lines[index], lines[index + 1:], body)
    if doubted and reading.verdict is Verdict.CONFIRMED:
        # Only a confirmation is vetoed: a refusal reaches the operator anyway, and "I
        # can't, maybe Friday" is still a refusal; "ok, if I'm done in time" is no yes.
        return ReplyReading(Verdict.UNCLEAR, "", body)
    return reading


def _hits(line: str) -> tuple[list[_Hit], bool]:
    """The verdict phrases said (not asked) in `line`, and whether a doubt, condition or
    deferral in it vetoes any verdict. One pass over the line."""
    folded = fold(line)
    stops = _next_stops(folded)
    hits: list[_Hit] = []
    vetoed = False
    for match in _PHRASES.finditer(folded):
        name = match.lastgroup
        assert name is not None  # every alternative is a named group
        verdict, explicit, where = _RULES[name]
        if verdict is None:
            vetoed = True
            continue
        if stops[match.end()] == "?":  # asked, not said: "confermo?", "can I confirm?"
            continue
        if where is not _Where.ANYWHERE and not _starts_clause(folded, match.start()):
            continue
        if where is _Where.ALONE and not _is_alone(line, folded, match.start(), match.end()):
            continue
        hits.append(_Hit(verdict, explicit, match.end()))
    return hits, vetoed


def _decide(hits: list[_Hit], line: str, following: list[str], body: str) -> ReplyReading:
    ranked = [hit for hit in hits if hit.explicit] or hits
    if any(hit.verdict is not ranked[0].verdict for hit in ranked):
        return ReplyReading(Verdict.UNCLEAR, "", body)
    rest = _LEADING_PUNCTUATION.sub("", line[ranked[0].end:]).strip()
    return ReplyReading(ranked[0].verdict, _reason(rest, following), body)


def _reason(rest: str, following: list[str]) -> str:
    lines = [rest, *following]
    for index in range(len(lines) - 1, max(len(lines) - 5, -1), -1):
        if _CLOSING.match(fold(lines[index].strip())):
            lines = lines[:index]
            break
    return "\n".join(lines).strip()


def _next_stops(folded: str) -> list[str]:
    """For each offset, the first sentence or clause mark at or after it ("" if none):
    computed once per line, from the right, instead of a search per phrase found."""
    stops = [""] * (len(folded) + 1)
    following = ""
    for position in range(len(folded) - 1, -1, -1):
        if folded[position] in _STOP_MARKS:
            following = folded[position]
        stops[position] = following
    return stops


def _starts_clause(folded: str, start: int) -> bool:
    """Does a clause begin at `start`: only blanks between it and the line's start or a
    clause mark? Looks back over the blanks alone."""
    position = start - 1
    while position >= 0 and folded[position].isspace():
        position -= 1
    return position < 0 or folded[position] in _CLAUSE_ENDS


def _is_alone(line: str, folded: str, start: int, end: int) -> bool:
    """A short word that is a whole clause; "sì" with its accent is never anything else."""
    after = folded[end:].lstrip()
    return not after or after[0] in _AFTER_ALONE or line[start:end].lower() == "sì"
