"""A technician's reply to an assignment mail: confirmed, rejected, a work report
(done or not done, with the hours read by mail.hours), or unclear.

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
5. A work report outranks a yes or a no, read over the same first lines: "not done"
   anywhere in them ("non ho finito", "manca il pezzo", "trebuie să revin") wins, as a
   false "done" closes a case that is still broken; otherwise a "done" phrase reports
   the job done, unless a doubt in its own sentence makes it UNCLEAR ("forse finito";
   "Fatto. Se ci sono problemi chiamatemi" is still done). A report whose hours cannot
   be read is still DONE, with its hours None for the operator to fill in.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import NamedTuple

from nexusmail.mail.hours import ReportedTime, read_hours
from nexusmail.mail.html import html_to_text
from nexusmail.mail.phrase_scan import compile_phrase_groups, group_of
from nexusmail.mail.quote_strip import cut_html_quote, fold, has_html_quote, strip_quote
from nexusmail.mail.report_phrases import DONE, DONE_IF_HOURS, DONE_WORDS, NOT_DONE
from nexusmail.mail.signature import CLOSING, signature_start

__all__ = ["ReplyReading", "Verdict", "read_reply", "strip_quote"]


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    UNCLEAR = "unclear"
    DONE = "done"              # a work report: the job is finished
    NOT_DONE = "not_done"      # a work report: not finished (a part, a second visit)


REPORTS = frozenset({Verdict.DONE, Verdict.NOT_DONE})


@dataclass(frozen=True)
class ReplyReading:
    verdict: Verdict
    reason: str   # "" when unclear or when nothing follows the verdict phrase
    body: str     # what the technician wrote: strip_quote of the text (or HTML) part
    # Reports only: whole minutes of work and of travel, None when not stated or unread.
    work_minutes: int | None = None
    travel_minutes: int | None = None

    @property
    def hours_unread(self) -> bool:
        """A done report without readable hours: the operator fills them in."""
        return self.verdict is Verdict.DONE and self.work_minutes is None


class _Where(Enum):
    ANYWHERE = "anywhere"
    CLAUSE_START = "clause"   # first word of a clause: "sure" but not "make sure"
    ALONE = "alone"           # a whole clause: "Sì." / "Da, vin" but not "si è rotto"


# (group, verdict or None for "says nothing", explicit?, where, phrases)
# Explicit phrases are the answers the assignment mail asks for.
_W = r"\w+\s+"
_CONFIRM_STEMS = r"(?:confirm|conferm|accept|accett)\w*"
_TABLE: tuple[tuple[str, Verdict | None, bool, _Where, tuple[str, ...]], ...] = (
    # A report that the job is not finished: first, so its "finito" is never read alone.
    ("not_done", Verdict.NOT_DONE, True, _Where.ANYWHERE, NOT_DONE),
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
        # Done with something else first: "Ok, quando ho finito a Monza passo".
        r"(?:quando|appena|dopo che) (?:ho |avro )?(?:finito|terminato)",
        r"(?:when|once|after) (?:i'?m |i am |i'?ve |i have |i )?(?:done|finished|finish)",
        r"(?:cand|dupa ce) (?:termin|am terminat|gata)",
        r"(?:finito|finish\w*|terminat\w*|done) (?:l'altro|the other|with the other|cu celalalt"
        r"|la celalalt|altrove|elsewhere)",
    )),
    ("done", Verdict.DONE, True, _Where.ANYWHERE, DONE),
    ("done_word", Verdict.DONE, True, _Where.CLAUSE_START, DONE_WORDS),
    ("done_if_hours", Verdict.DONE, True, _Where.CLAUSE_START, DONE_IF_HOURS),
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
# One scan of a line finds every phrase of the table; at each word start it tries only
# the phrases that can begin with the letter there (see mail.phrase_scan).
_PHRASES = compile_phrase_groups([(name, phrases) for name, _, _, _, phrases in _TABLE])
_RULES = {name: (verdict, explicit, where) for name, verdict, explicit, where, _ in _TABLE}
# The same rules under the names of the scan's groups, each found by one lookup.
_RULES_BY_SCAN_GROUP = {scan_group: (*_RULES[group_of(scan_group)],
                                     group_of(scan_group) == "done_if_hours")
                        for scan_group in _PHRASES.groupindex}

_LINES_READ = 5              # the verdict opens the reply; a later "no" is about something else
MAX_VERDICT_CHARS = 4000     # what the verdict is read from: the opening of the reply
# A header line left behind by a quote its client marked oddly: "Da: X <x@y>" (Italian
# "From"), "To: x@y". It names an address, so it is no one's answer (and a line without
# "@" is never one: that test is cheaper than the pattern).
_HEADER_RESIDUE = re.compile(r"^[\w *]{1,16}:\s.{0,200}@[^\s@]+\.\w+")
_CLAUSE_ENDS = ",.;:!?-\u2013\u2014(\n"
_AFTER_ALONE = ",.;:!-\u2013\u2014)"
_STOP_MARK = re.compile(r"[.!?,;:\n]")
_LEADING_PUNCTUATION = re.compile(r"^[\s:;,.!\-\u2013\u2014)]+")


class _Hit(NamedTuple):  # a tuple: made for every phrase found, a dataclass costs more
    verdict: Verdict
    explicit: bool
    start: int
    end: int
    needs_hours: bool = False


class _Line(NamedTuple):
    """One of the first lines read, with the phrases said in it and its doubts."""

    at: int                    # its index in the lines
    hits: list[_Hit]
    doubts: list[int]          # where a doubt, condition or deferral starts


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
    # Above the signature only: a slogan's "problema risolto" or "24h" is nobody's answer.
    lines = lines[:signature_start(lines)]
    read: list[_Line] = []
    reported = False             # a report phrase in the lines read
    decided: _Line | None = None  # the first line read with a yes or a no
    for index, line in enumerate(lines):
        folded = fold(line)  # once per line: the header test and the phrases read it
        stripped = folded.strip()
        if not stripped or ("@" in stripped and _HEADER_RESIDUE.match(stripped)):
            continue
        hits, doubts = _hits(line, folded)
        read.append(_Line(index, hits, doubts))
        for hit in hits:
            if hit.verdict in REPORTS:
                reported = True
            elif decided is None:
                decided = read[-1]
        if len(read) == _LINES_READ:
            break
    if reported:
        report = _report(read, lines, body)
        if report is not None:
            return report
    if decided is None:
        return ReplyReading(Verdict.UNCLEAR, "", body)
    hits = [hit for hit in decided.hits if hit.verdict not in REPORTS]
    reading = _decide(hits, lines[decided.at], lines[decided.at + 1:], body)
    if reading.verdict is Verdict.CONFIRMED and any(line.doubts for line in read):
        # Only a confirmation is vetoed: a refusal reaches the operator anyway, and "I
        # can't, maybe Friday" is still a refusal; "ok, if I'm done in time" is no yes.
        return ReplyReading(Verdict.UNCLEAR, "", body)
    return reading


def _report(read: list[_Line], lines: list[str], body: str) -> ReplyReading | None:
    """The reply read as a work report, or None when it reports nothing. The words the
    assignment mail asks for make it an answer instead ("Decline - no parts in stock")."""
    if any(hit.explicit and hit.verdict not in REPORTS for line in read for hit in line.hits):
        return None
    for line in read:
        for hit in line.hits:
            if hit.verdict is Verdict.NOT_DONE:
                stated = read_hours("\n".join(lines))
                return ReplyReading(Verdict.NOT_DONE, _reason_after(hit, line, lines), body,
                                    stated.work_minutes, stated.travel_minutes)
    time: ReportedTime | None = None
    doubted = False
    for line in read:
        for hit in line.hits:
            if hit.verdict is not Verdict.DONE:
                continue
            if hit.needs_hours:
                time = time or read_hours("\n".join(lines))
                if time.work_minutes is None:
                    continue
            if _in_same_sentence(lines[line.at], hit, line.doubts):
                doubted = True
                continue
            time = time or read_hours("\n".join(lines))
            return ReplyReading(Verdict.DONE, _reason_after(hit, line, lines), body,
                                time.work_minutes, time.travel_minutes)
    # "Forse finito", "Fatto, spero che regga": a doubted report is no report and no yes.
    return ReplyReading(Verdict.UNCLEAR, "", body) if doubted else None


def _reason_after(hit: _Hit, line: _Line, lines: list[str]) -> str:
    rest = _LEADING_PUNCTUATION.sub("", lines[line.at][hit.end:]).strip()
    return _reason(rest, lines[line.at + 1:])


_SENTENCE_ENDS = frozenset(".!?;")


def _in_same_sentence(text: str, hit: _Hit, doubts: list[int]) -> bool:
    """Is one of `doubts` (offsets) in the sentence of `hit`? Looks only between the
    sentence marks around the hit."""
    if not doubts:
        return False
    start = hit.start
    while start > 0 and text[start - 1] not in _SENTENCE_ENDS:
        start -= 1
    end = hit.end
    while end < len(text) and text[end] not in _SENTENCE_ENDS:
        end += 1
    return any(start <= doubt < end for doubt in doubts)


def _hits(line: str, folded: str) -> tuple[list[_Hit], list[int]]:
    """The verdict phrases said (not asked) in `line` (`folded` is its fold), and where
    a doubt, condition or deferral in it starts (it vetoes a confirmation, and a report
    in its sentence). One pass over the line."""
    marks: list[int] | None = None  # the line's clause marks, found at the first need
    hits: list[_Hit] = []
    doubts: list[int] = []
    for match in _PHRASES.finditer(folded):
        name = match.lastgroup
        assert name is not None  # every alternative is a named group
        verdict, explicit, where, needs_hours = _RULES_BY_SCAN_GROUP[name]
        start, end = match.span()
        if verdict is None:
            doubts.append(start)
            continue
        if marks is None:
            marks = _clause_marks(folded)
        if _next_stop(folded, marks, end) == "?":  # asked, not said: "confermo?"
            continue
        if where is not _Where.ANYWHERE and not _starts_clause(folded, start):
            continue
        if where is _Where.ALONE and not _is_alone(line, folded, start, end):
            continue
        hits.append(_Hit(verdict, explicit, start, end, needs_hours))
    return hits, doubts


def _decide(hits: list[_Hit], line: str, following: list[str], body: str) -> ReplyReading:
    ranked = [hit for hit in hits if hit.explicit] or hits
    if any(hit.verdict is not ranked[0].verdict for hit in ranked):
        return ReplyReading(Verdict.UNCLEAR, "", body)
    rest = _LEADING_PUNCTUATION.sub("", line[ranked[0].end:]).strip()
    return ReplyReading(ranked[0].verdict, _reason(rest, following), body)


def _reason(rest: str, following: list[str]) -> str:
    lines = [rest, *following]
    for index in range(len(lines) - 1, max(len(lines) - 5, -1), -1):
        if CLOSING.match(fold(lines[index].strip())):
            lines = lines[:index]
            break
    return "\n".join(lines).strip()


def _clause_marks(folded: str) -> list[int]:
    """Where the sentence and clause marks of a line are: found once per line by one
    scan, then each phrase's next mark is a binary search (a search per phrase found
    would be quadratic on a line of many phrases)."""
    return [match.start() for match in _STOP_MARK.finditer(folded)]


def _next_stop(folded: str, marks: list[int], offset: int) -> str:
    """The first sentence or clause mark at or after `offset` ("" if none)."""
    index = bisect_left(marks, offset)
    return folded[marks[index]] if index < len(marks) else ""


def _starts_clause(folded: str, start: int) -> bool:
    """Does a clause begin at `start`: only blanks between it and the line's start, a
    clause mark or a symbol ("✅ Fatto", "👍 sure", a quote mark)? Looks back over the
    blanks alone."""
    position = start - 1
    while position >= 0 and folded[position].isspace():
        position -= 1
    if position < 0 or folded[position] in _CLAUSE_ENDS:
        return True
    before = folded[position]
    return not (before.isalnum() or before in "'_")


def _is_alone(line: str, folded: str, start: int, end: int) -> bool:
    """A short word that is a whole clause; "sì" with its accent is never anything else."""
    after = folded[end:].lstrip()
    return not after or after[0] in _AFTER_ALONE or line[start:end].lower() == "sì"
