"""Hours worked and travel time, read from a technician's work report.

Technicians write time the way they say it, from a phone, in Italian, Romanian or
English: "2h", "1,5 ore", "2 ore e mezza", "2h30", "2:30", "90 min", "o oră și
jumătate", "an hour and a half", "1,5 h + 40 min di viaggio". The result is whole
minutes (20 min is a third of an hour, kept exact: hours are minutes / 60 downstream).

What looks like time but is not, and is skipped: a time of day ("alle 9", "ore 9",
"la 10:30", "arrivato 8:30"), a date ("12.03", "il 12 ore 10"), phone numbers and
serial numbers ("matricola 2H45-778"), counts without a unit ("2 tecnici"). When the
report names several work times that are not plainly added up ("3 ore, previste 2
ore"), the work time is unknown (None): a wrong figure on a timesheet is worse than a
flag for the operator, and the technician's echo shows what was read.

Pure and linear: one regular-expression scan over the folded text (fold keeps the
offsets), each match checked against a few characters around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

from nexusmail.mail.quote_strip import fold

__all__ = ["MAX_HOURS_CHARS", "ReportedTime", "read_hours"]

MAX_HOURS_CHARS = 4000      # a report states its time in its opening lines
_MAX_MINUTES = 100 * 60     # a report of more than 100 hours is a misread number
# "Assistenza 24h", "24 ore su 24": a firm's slogan, never one person's report.
_ROUND_THE_CLOCK = 24 * 60
_LOOK_AROUND = 24           # characters looked at on each side of an amount

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "an": 1,
    "un": 1, "un'": 1, "uno": 1, "una": 1, "due": 2, "tre": 3, "quattro": 4, "cinque": 5,
    "sei": 6, "sette": 7, "otto": 8, "nove": 9, "dieci": 10,
    "o": 1, "doua": 2, "doi": 2, "trei": 3, "patru": 4, "cinci": 5, "sase": 6, "sapte": 7,
    "opt": 8, "noua": 9, "zece": 10,
}
_WORD_ALTERNATION = "|".join(sorted((re.escape(w) for w in _NUMBER_WORDS), key=len,
                                    reverse=True))
# Folded text: "oră" is "ora", "două" "doua", "jumătate" "jumatate", "și" "si".
_NUM = rf"(?:\d{{1,3}}(?:[.,]\d{{1,2}})?|(?<![\w'])(?:{_WORD_ALTERNATION}))"
_HOUR_UNIT = r"(?:hours?|hrs?|ore|ora|h)(?![a-z])"
# A lone "m" is metres ("5 m di tubo"): minutes only right after the hours ("2h 30m").
_MINUTE_UNIT = r"(?:minutes?|mins?|minuti|minuto|minute|de\s+minute|min|')(?![a-z])"
_AND = r"(?:\s*,?\s*(?:e|and|si|ed)\s+|\s*,\s*|\s+)"
_TIME = re.compile(
    # Every form starts a word: one test here spares the alternatives at every position
    # inside a word, where the scan spends most of its time.
    r"\b(?=\w)(?:"
    # "2:30": hours and minutes (a time of day is ruled out after the match).
    r"(?<![\w.,:/-])(?P<clock_h>\d{1,2}):(?P<clock_m>[0-5]\d)(?![\d:])"
    # "2 h", "1,5 ore", "two and a half hours", "un'ora e mezza", "2h30", "1 hour 15 min".
    rf"|(?<![\w.,:/-])(?P<num>{_NUM})(?P<pre_half>\s+(?:and\s+a\s+half|e\s+mezz[ao]|si\s+jumatate))?"
    rf"\s*(?P<unit>{_HOUR_UNIT})"
    r"(?:(?P<glued>\d{2})(?:m|min)?(?![\w])"
    rf"|{_AND}(?:a\s+)?(?P<half>mezz[ao]|half|jumatate)(?![a-z])"
    rf"|{_AND}(?P<quarter>un\s+quarto|un\s+sfert|a\s+quarter)(?![a-z])"
    rf"|{_AND}(?P<extra>[0-5]?\d)\s*(?:{_MINUTE_UNIT}|m(?![a-z]))"
    # Minutes without a unit only as two digits that end the phrase: "2 ore e 30,".
    r"|\s*(?:,?\s*(?:e|and|si)\s+|\s+)(?P<bare>[0-5]\d)(?![\w:]|[.,]\d|\s*[a-z])"
    r")?"
    # "90 min", "40 minuti", "30 de minute", "90'".
    rf"|(?<![\w.,:/-])(?P<minutes>\d{{1,3}}|(?<![\w'])(?:{_WORD_ALTERNATION}))\s*{_MINUTE_UNIT}"
    # Fractions of an hour said in words.
    r"|(?P<half_hour>\bmezz'?\s?ora|\bhalf\s+(?:an\s+)?hour|\bjumatate\s+de\s+ora)(?![a-z])"
    r"|(?P<quarter_hour>\bun\s+quarto\s+d'ora|\bun\s+sfert\s+de\s+ora"
    r"|\ba\s+quarter\s+of\s+an\s+hour)(?![a-z])"
    r"|(?P<three_quarters>\btre\s+quarti\s+d'ora|\btrei\s+sferturi\s+de\s+ora"
    r"|\bthree\s+quarters\s+of\s+an\s+hour)(?![a-z])"
    # "Ore: 2,5", "Hours: 3", "Viaggio: 1": a label with a colon, then a bare number.
    r"|(?P<label>\b(?:hours|hrs|ore(?:\s+(?:lavorate|di\s+lavoro|lucrate|de\s+lucru))?"
    r"|travel|viaggio|deplasare))\s*[:=]\s*(?P<label_num>\d{1,2}(?:[.,]\d{1,2})?)"
    r"(?![\d:.,]|\s*[a-z'])"
    r")"
)
# What comes just before a number that makes it a time of day or a date, not an amount:
# "alle 9h", "ore 2:30", "at 2:30", "la 10:30", "dalle 2", "il 12 ore 10", "arrivato 8:30".
_TIME_OF_DAY_BEFORE = re.compile(
    r"(?:\b(?:alle|all'|ore|ora|at|la|le|dalle|dal|dalla|il|from|until|till|by|entro|verso"
    r"|pana|pe|arrivato|arrivata|arrived|ajuns|sosit|partito|plecat|orario|around|inizio"
    r"|start|started|iniziato)|\bh\.?)\s*$"
)
# A serial or part number: "matricola 2H45", "S/N: 12h30", "cod. 2h".
_SERIAL_BEFORE = re.compile(
    r"\b(?:matricola|matr|s/n|sn|serial|seriale|serie|cod|codice|code|model|modello|art"
    r"|nr|seria)\.?\s*[:#.]?\s*$"
)
# A digit just before (a phone number "333 1234567 2h", a date "12/03 2 ore").
_DIGIT_BEFORE = re.compile(r"\d[\s./-]?$")
# The number goes on after the match: "2H45-778", "2:30/3", "1h.5".
_CODE_AFTER = re.compile(r"^[-/.][\w]|^\d")
# "ore 9" after "12.03": the unit is a time-of-day word followed by the hour.
_HOUR_AFTER = re.compile(r"^\s*\d")

_TRAVEL_WORDS = (r"viaggio|viaggi|trasferta|trasferimento|spostamento|strada|percorso"
                 r"|travel\w*|driving|drive|journey|commute|deplasare\w*|drum\w*|transport")
_WORK_WORDS = (r"lavoro|lavorato|lavorate|manodopera|work|worked|working|labou?r|lucru"
               r"|lucrat\w*|manopera|intervento|interventie")
_CUE_BEFORE = re.compile(
    rf"\b(?P<cue>{_TRAVEL_WORDS}|{_WORK_WORDS})\s*[:=-]?\s*(?:(?:di|de|in|of|for)\s+)?$")
_CUE_AFTER = re.compile(
    rf"^\s*(?:(?:di|de|in|of|for|per|pe)\s+)?(?P<cue>{_TRAVEL_WORDS}|{_WORK_WORDS})\b")
_IS_TRAVEL = re.compile(rf"^(?:{_TRAVEL_WORDS})$")
# Between two work amounts, what says they add up: "2h + 1h", "2 ore e poi 1 ora".
_ADDED = re.compile(r"\+|\b(?:piu|plus|and|e|si|poi|then|apoi|ed)\b")
_SENTENCE_STOP = re.compile(r"[,;+\n]|\.(?:\s|$)")


@dataclass(frozen=True)
class ReportedTime:
    """Whole minutes read from a report; None when none (or no single figure) was read."""

    work_minutes: int | None
    travel_minutes: int | None

    @property
    def hours(self) -> Fraction | None:
        return None if self.work_minutes is None else Fraction(self.work_minutes, 60)

    @property
    def travel_hours(self) -> Fraction | None:
        return None if self.travel_minutes is None else Fraction(self.travel_minutes, 60)


@dataclass(frozen=True)
class _Amount:
    start: int
    end: int
    minutes: int
    label: str | None   # the cue word of a labelled amount ("viaggio: 1")


def read_hours(text: str) -> ReportedTime:
    """The hours worked and the travel time stated in `text` (its opening only)."""
    folded = fold(text[:MAX_HOURS_CHARS])
    amounts = [amount for match in _TIME.finditer(folded)
               if (amount := _amount(folded, match)) is not None]
    if not amounts:
        return ReportedTime(None, None)
    travel = _travel_flags(folded, amounts)
    work = [amount for amount, is_travel in zip(amounts, travel, strict=True) if not is_travel]
    away = [amount for amount, is_travel in zip(amounts, travel, strict=True) if is_travel]
    return ReportedTime(_total(folded, work), _total(folded, away))


def _amount(folded: str, match: re.Match[str]) -> _Amount | None:
    """The minutes of one match, or None when its surroundings say it is no amount."""
    before = folded[max(match.start() - _LOOK_AROUND, 0):match.start()]
    after = folded[match.end():match.end() + _LOOK_AROUND]
    if _DIGIT_BEFORE.search(before) or _SERIAL_BEFORE.search(before) or _CODE_AFTER.match(after):
        return None
    groups = match.groupdict()
    label = groups["label"]
    timed = groups["clock_h"] is not None or groups["unit"] is not None
    if timed and _TIME_OF_DAY_BEFORE.search(before):
        return None
    if groups["clock_h"] is not None:
        minutes = int(groups["clock_h"]) * 60 + int(groups["clock_m"])
        if int(groups["clock_h"]) >= 10:  # "10:30" is a time of day far more often
            return None
    elif groups["unit"] is not None:
        minutes_or_none = _hour_amount(groups, after)
        if minutes_or_none is None:
            return None
        minutes = minutes_or_none
    elif groups["minutes"] is not None:
        minutes = _minutes(groups["minutes"], 1)
    elif groups["half_hour"] is not None:
        minutes = 30
    elif groups["quarter_hour"] is not None:
        minutes = 15
    elif groups["three_quarters"] is not None:
        minutes = 45
    else:
        minutes = _minutes(groups["label_num"], 60)
    if not 0 < minutes <= _MAX_MINUTES or minutes == _ROUND_THE_CLOCK:
        return None
    return _Amount(match.start(), match.end(), minutes, label)


def _hour_amount(groups: dict[str, str | None], after: str) -> int | None:
    number = groups["num"]
    assert number is not None
    decimal = not number.isalpha() and ("." in number or "," in number)
    extra = groups["extra"] or groups["glued"] or groups["bare"]
    if extra is None and _HOUR_AFTER.match(after):
        return None  # "12.03 ore 9", "il 2 ore 10": a date and a time of day
    if decimal and (extra is not None or groups["half"] or groups["pre_half"]):
        return None  # "1,5 ore e 30" says two things at once
    minutes = _minutes(number, 60)
    if groups["pre_half"] or groups["half"]:
        minutes += 30
    if groups["quarter"]:
        minutes += 15
    if extra is not None:
        minutes += int(extra)
    return minutes


def _minutes(text: str | None, per_unit: int) -> int:
    """`text` (digits with an optional decimal comma or point, or a number word) times
    `per_unit`, rounded to the whole minute; integers only, so "1,5" is exactly 90."""
    assert text is not None
    word = _NUMBER_WORDS.get(text.strip())
    if word is not None:
        return word * per_unit
    whole, _, fraction = text.replace(",", ".").partition(".")
    scale = int("1" + "0" * len(fraction))  # 10 ** n, typed as an int
    scaled = int(whole + fraction) * per_unit
    return (2 * scaled + scale) // (2 * scale)  # round half up


def _travel_flags(folded: str, amounts: list[_Amount]) -> list[bool]:
    """Which amounts are travel time. Writers put the word either before every figure
    ("viaggio 1h, lavoro 2h") or after it ("2h lavoro + 1h di viaggio"); the first
    figure with a word next to it shows which, so "lavoro 2h viaggio 1h" is read whole."""
    cues: list[tuple[str | None, str | None]] = []  # the word before, the word after
    for index, amount in enumerate(amounts):
        low = amounts[index - 1].end if index else 0
        high = amounts[index + 1].start if index + 1 < len(amounts) else len(folded)
        before = folded[max(low, amount.start - _LOOK_AROUND):amount.start]
        after = folded[amount.end:min(high, amount.end + _LOOK_AROUND)]
        cue_before = _CUE_BEFORE.search(before)
        cue_after = _CUE_AFTER.match(after)
        cues.append((amount.label or (cue_before.group("cue") if cue_before else None),
                     cue_after.group("cue") if cue_after else None))
    words_first = next((before is not None for before, after in cues
                        if before is not None or after is not None), False)
    flags = []
    for cue_before_word, cue_after_word in cues:
        cue = ((cue_before_word or cue_after_word) if words_first
               else (cue_after_word or cue_before_word))
        flags.append(bool(cue and _IS_TRAVEL.match(cue)))
    return flags


def _total(folded: str, amounts: list[_Amount]) -> int | None:
    """One figure, or several plainly added up ("2h + 1h"); None otherwise."""
    if not amounts:
        return None
    for first, second in pairwise(amounts):
        between = folded[first.end:second.start]
        if len(between) > _LOOK_AROUND or not _ADDED.search(between):
            return None
    total = sum(amount.minutes for amount in amounts)
    return total if total <= _MAX_MINUTES else None
