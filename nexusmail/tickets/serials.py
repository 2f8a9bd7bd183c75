"""Serial numbers of a customer's machines, found as whole words in a mail's text.

"La caldaia matricola SN:12-345/B non parte" names the machine 12-345/B. A serial is
found only as a whole token: letters and digits, joined inside by "-", "/", "." or "_"
("12-345/B", "AB.2024.77"), cut by anything else (spaces, ":", ",", brackets, a
sentence's final full stop). So serial 345 is not found in "12-345/B" nor in "SN345":
both are other, longer serials. An abbreviation glued in front with a full stop
("Nr.4711002", "matr.AB12") is read off. Serials are compared without regard to case
(people type "ab123" for AB123).

Serials that would be found in ordinary text are never looked for: fewer than
MIN_SERIAL_CHARS characters, no digit at all (a word), or all digits and shorter than
MIN_DIGITS_ONLY_CHARS (a year, a quantity, a postcode).

Pure and linear in the text: a digit search per line, then for lines with a digit one
regular-expression pass whose tokens cannot overlap, and a set lookup per token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

MIN_SERIAL_CHARS = 4
MIN_DIGITS_ONLY_CHARS = 6
# Longer tokens are not serials (base64 lines, URLs without their punctuation); cutting
# them keeps the candidate list of a huge body short.
MAX_SERIAL_CHARS = 64
# A customer names the machine near the top of what they write; quoted history, long
# logs pasted below and attachments turned into text add nothing but time (a 1 MB
# body of words took 2 s to scan whole). Each text is read this far.
MAX_SCAN_CHARS = 20_000
# A token is runs of word characters joined by single "-", "/", "." or "_"; each
# character is consumed once, so the scan is linear (no run can be read two ways).
_TOKEN = re.compile(r"[^\W_]+(?:[-/._][^\W_]+)*")
# Abbreviations written glued to the serial: "Nr.4711002", "matr.AB12", "S.N.AB12".
_ABBREVIATION = re.compile(r"(?:[^\W\d_]{1,6}\.)+")
_DIGIT = re.compile(r"\d")


def serial_key(serial: str) -> str:
    """The form serials are compared in: no surrounding space, case folded."""
    return serial.strip().casefold()


def is_findable(serial: str) -> bool:
    """True for a serial that can be told apart from ordinary words and numbers."""
    key = serial_key(serial)
    return _TOKEN.fullmatch(key) is not None and _is_findable_token(key)


def _is_findable_token(token: str) -> bool:
    """is_findable for one token of _TOKEN (so without the pattern check)."""
    if not MIN_SERIAL_CHARS <= len(token) <= MAX_SERIAL_CHARS:
        return False
    if token.isdigit():
        return len(token) >= MIN_DIGITS_ONLY_CHARS
    return any(ch.isdigit() for ch in token)


def _tokens(text: str) -> Iterator[str]:
    """Each token that may be a serial, as written, and once more without an
    abbreviation glued in front. This runs on every mail, and most of a mail is words:
    lines without a digit are skipped whole (a token never spans lines), the words of
    the others by the cheapest checks first."""
    for line in text.splitlines():
        if _DIGIT.search(line) is not None:
            yield from _line_tokens(line)


def _line_tokens(line: str) -> Iterator[str]:
    for token in _TOKEN.findall(line):
        # Words of letters alone have no digit (so are no serial) and no abbreviation
        # to read off: skipped at C speed.
        if len(token) < MIN_SERIAL_CHARS or token.isalpha() or len(token) > MAX_SERIAL_CHARS:
            continue
        yield token
        prefix = _ABBREVIATION.match(token)
        if prefix is not None and prefix.end() < len(token):
            yield token[prefix.end():]


def serial_candidates(*texts: str, limit: int = 100) -> tuple[str, ...]:
    """The tokens of `texts` that could be serials, as written, in order of appearance,
    each once whatever its case, at most `limit`, from the first MAX_SCAN_CHARS of each
    text: what to look up among a customer's machines (see `lookup_forms`)."""
    seen: dict[str, str] = {}
    for text in texts:
        for token in _tokens(text[:MAX_SCAN_CHARS]):
            key = token.casefold()
            if key not in seen and _is_findable_token(key):
                seen[key] = token
                if len(seen) >= limit:
                    return tuple(seen.values())
    return tuple(seen.values())


def lookup_forms(candidates: Iterable[str]) -> tuple[str, ...]:
    """The spellings to compare stored serials with by equality (so an index answers):
    as written, upper case (as labels print them) and lower case."""
    forms: dict[str, None] = {}
    for token in candidates:
        forms.update(dict.fromkeys((token, token.upper(), token.lower())))
    return tuple(forms)


def find_serials(serials: Iterable[str], *texts: str) -> tuple[str, ...]:
    """The serials (as given) found as whole tokens in `texts`, in order of first
    appearance, each once."""
    wanted = {serial_key(s): s for s in serials if is_findable(s)}
    if not wanted:
        return ()
    found: dict[str, None] = {}
    for text in texts:
        for token in _tokens(text):
            serial = wanted.get(token.casefold())
            if serial is not None:
                found.setdefault(serial, None)
    return tuple(found)
