"""What the technician wrote in a reply: quoted original, signature and footers removed.

A reply to an assignment mail carries that mail back (which says both CONFIRM and
REJECT), so the verdict must be read from the technician's own lines only. Mail clients
mark the quote in a handful of ways; each is one compiled pattern below, with the client
and language that writes it. Pure functions over text (DESIGN.md invariant 6).

Three shapes of quote:
- an attribution line ("On ... wrote:") followed by `>` lines: only those go, so text
  written below or between the quoted blocks (bottom-posting, interleaving) is kept;
- an attribution or header block followed by the original unquoted (Outlook, Apple
  and HTML mails turned to text): everything from there on goes;
- separators, signature and mobile footers: everything from there on goes.
"""

from __future__ import annotations

import re
import unicodedata


def _fold_table() -> dict[int, str]:
    # One character in, one out: folded text keeps the offsets of the original, so a
    # match in folded text can cut the original (the reason keeps its accents).
    table: dict[int, str] = {}
    for code in [*range(0x41, 0x5B), *range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        char = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFKD", char)
                       if not unicodedata.combining(c)).lower()
        if len(base) == 1 and base != char:
            table[code] = base
    for quote in "\u2018\u2019\u02bc\u00b4`":  # typographic apostrophes from phones
        table[ord(quote)] = "'"
    table[0xA0] = " "
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower case without diacritics (ș/ş/s, ț/ţ/t, ă/â/a, î/i, ì/i), same length as `text`."""
    return text.translate(_FOLD)


# -- Attribution lines: "<when>, <who> wrote:" ----------------------------------------
# Matched on folded text, so "În" is "in" and "Către" is "catre".
_WROTE_END = re.compile(r"(?:wrote|scritto|scris|>)\s*:$")
_DATED_ATTRIBUTIONS = (
    # Gmail en "On Mon, 3 Mar 2025 at 10:00, X <x@y> wrote:"; Apple Mail en "On 3 Mar
    # 2025, at 10:00, X wrote:"; Thunderbird en "On 03/03/2025 10:00, X wrote:".
    r"^on\b.*\d.*\bwrote\s*:$",
    # Gmail it "Il giorno lun 3 mar 2025 alle ore 10:00 X <x@y> ha scritto:"; Apple Mail
    # it "Il giorno 3 mar 2025, alle ore 10:00, X ha scritto:"; Thunderbird it
    # "Il 03/03/2025 10:00, X ha scritto:".
    r"^il\b.*\d.*\bha scritto\s*:$",
    # Gmail ro "În data de lun., 3 mar. 2025 la 10:00, X <x@y> a scris:"; Thunderbird
    # ro "În data de 03.03.2025 10:00, X a scris:"; Apple Mail ro "Pe 3 mar. 2025, la
    # 10:00, X a scris:"; older Thunderbird ro "La 03.03.2025 10:00, X a scris:".
    r"^(?:in data de|pe|la)\b.*\d.*\ba scris\s*:$",
    # Old Gmail, every language: "2025-03-03 10:00 GMT+01:00 X <x@y>:".
    r"^\d{4}-\d\d-\d\d\b.*<[^<>\s]+@[^<>\s]+>\s*:$",
)
# Any client, any opening, when the line names an address: "X <x@y> wrote:". Tried
# after the dated forms, which it would cut short when the client wrapped inside "<x@y>".
_NAMED_ATTRIBUTION = re.compile(r"^.*@.*\b(?:wrote|ha scritto|a scris)\s*:$")

# -- Header blocks of the original: "From: / Sent: / To: / Subject:" -------------------
# Outlook desktop and web, and Outlook mobile, in English / Italian / Romanian; Outlook
# plain text may bold the names ("*From:* X"), hence the stars removed before matching.
_HEADER_FROM = re.compile(r"^(?:from|da|de la|de)\s*:")                   # en / it / ro
_HEADER_OTHER = re.compile(
    r"^(?:sent|date|to|cc|subject"                   # Outlook en
    r"|inviato|data|a|oggetto"                       # Outlook it
    r"|trimis|catre|subiect)\s*:"                    # Outlook ro (Data: as in it)
)

# -- Lines from which everything is dropped (matched on the folded, stripped line) -------
_CUT_LINES = (
    # Outlook desktop "-----Original Message-----", it "-----Messaggio originale-----",
    # ro "-----Mesaj original-----"; Gmail forwards "---------- Forwarded message ---------".
    r"^-{2,}\s*(?:original message|messaggio originale|mesaj(?:ul)? original"
    r"|forwarded message|messaggio inoltrato|mesaj (?:redirectionat|transmis))\s*-{2,}$",
    # Outlook web / new Outlook: a line of underscores above the From: block.
    r"^_{8,}$",
    # Usenet / RFC 3676 §4.3 signature separator "-- " (its trailing space often lost).
    r"^--$",
    # Mobile footers, short lines naming a device or app: "Sent from my iPhone",
    # "Sent from Outlook for Android", it "Inviato da iPhone", "Inviato dal mio
    # smartphone Samsung", ro "Trimis de pe iPhone", "Trimis de pe Samsung".
    r"^(?:sent (?:from|with|via)|inviato (?:da|dal|con)|trimis (?:de pe|cu|din))\b"
    r".{0,40}\b(?:iphone|ipad|android|smartphone|telefon\w*|cellulare|mobile"
    r"|dispozitiv\w*|outlook|gmail|yahoo|libero|samsung|galaxy|huawei|xiaomi"
    r"|redmi|honor|oppo|motorola|blackberry|windows|mail)\b.{0,40}$",
    # Outlook mobile ads, en "Get Outlook for iOS<https://aka.ms/...>", it "Scarica
    # Outlook per iOS", ro "Descărcați Outlook pentru Android" / "Obțineți Outlook ...".
    r"^(?:get|scarica|ottieni|descarca\w*|obtine\w*) outlook (?:for|per|pentru)"
    r" (?:ios|android)\b.{0,60}$",
)
# Each table is tried as one alternation: one scan per line instead of one per pattern.
_DATED_ATTRIBUTION = re.compile("|".join(f"(?:{p})" for p in _DATED_ATTRIBUTIONS))
_CUT_LINE = re.compile("|".join(f"(?:{p})" for p in _CUT_LINES))
_BLANK_RUNS = re.compile(r"\n{3,}")
# Attribution lines, header fields and footers are short; a longer line is someone's
# prose and no pattern is tried on it (the patterns' cost then never grows with it).
MAX_MARKER_CHARS = 400


def strip_quote(text: str) -> str:
    """Only the lines the sender wrote: no quote, no signature, no mobile footer.

    Lines keep their text with trailing whitespace removed; runs of blank lines become
    one and the result has no leading or trailing blank line.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    quoted_next = _quoted_next(lines)
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            kept.append("")
            continue
        if stripped[0] == ">":  # a quoted line, at any depth ("> >", ">>")
            continue
        if len(stripped) > MAX_MARKER_CHARS:  # prose, never a marker: no pattern to try
            kept.append(line.rstrip())
            continue
        folded = fold(stripped)
        if _CUT_LINE.match(folded):
            break
        if _starts_header_block(lines, index, folded):
            break
        start = _attribution_start(lines, index, folded)
        if start is not None:
            # The attribution may have been wrapped: its first lines were kept already.
            del kept[len(kept) - (index - start):]
            if quoted_next[index + 1]:
                continue  # only the `>` lines go; what follows them is the sender's again
            break
        kept.append(line.rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip("\n")


def _attribution_start(lines: list[str], index: int, folded: str) -> int | None:
    """First line of an attribution ending at `index` (wrapped over up to 3 lines)."""
    if not folded.endswith(":") or not _WROTE_END.search(folded):
        return None
    candidate = folded
    named = None  # where a line naming an address starts, if no dated opening is found
    for start in range(index, max(index - 3, -1), -1):
        if start < index:
            previous = lines[start].strip()
            if not previous or previous[0] == ">":
                break
            candidate = fold(previous) + " " + candidate
        if _DATED_ATTRIBUTION.match(candidate):
            return start
        if named is None and _NAMED_ATTRIBUTION.match(candidate):
            named = start
    return named


def _starts_header_block(lines: list[str], index: int, folded: str) -> bool:
    """Is this `From:` the first of an Outlook header block (two more fields follow)?"""
    if "*" in folded:
        folded = folded.replace("*", "")
    if not _HEADER_FROM.match(folded):
        return False
    fields = 0
    for line in lines[index + 1:index + 7]:
        other = fold(line.strip().replace("*", ""))
        if other and _HEADER_OTHER.match(other):
            fields += 1
            if fields == 2:
                return True
    return False


def _quoted_next(lines: list[str]) -> list[bool]:
    """For each index, whether the first non-blank line from there on is quoted (`>`):
    one pass from the end, so a mail of many attributions and blank lines stays linear."""
    flags = [False] * (len(lines) + 1)
    following = False
    for index in range(len(lines) - 1, -1, -1):
        stripped = lines[index].strip()
        if stripped:
            following = stripped[0] == ">"
        flags[index] = following
    return flags


# -- HTML -----------------------------------------------------------------------------
# Outlook quotes without <blockquote>: the original follows a marker, and Outlook never
# writes below it, so the HTML is cut there. Gmail, Apple Mail and Thunderbird use
# <blockquote>, which html_to_text turns into `>` lines for strip_quote.
_HTML_CUTS = re.compile(
    r"<div\b[^>]*\bid=[\"']?(?:appendonsend|divRplyFwdMsg)\b"       # Outlook web / new Outlook
    r"|<hr\b[^>]*\bid=[\"']?stopSpelling\b"                         # Outlook web, older
    r"|<div\b[^>]*\bborder-top:\s*solid\s+#(?:E1E1E1|B5C4DF)\b",    # Outlook desktop
    re.IGNORECASE,
)
# Gmail's and Yahoo's quote wrapper, with the attribution inside: dropped whole, so a
# reply written below it (rare in Gmail HTML, but seen) is kept.
_HTML_QUOTE_OPEN = re.compile(
    r"<div\b[^>]*\bclass=[\"']?(?:gmail_quote|yahoo_quoted|moz-cite-prefix)\b[^>]*>",
    re.IGNORECASE,
)
_DIV_TAG = re.compile(r"<(/?)div\b[^>]*>", re.IGNORECASE)


def cut_html_quote(html: str) -> str:
    """HTML without Outlook's original below its marker and without Gmail quote divs."""
    cut = _HTML_CUTS.search(html)
    if cut:
        html = html[:cut.start()]
    # One pass over the div tags: text outside quote divs is kept, a quote div is
    # skipped with everything nested in it (a copy per quote would be quadratic).
    pieces: list[str] = []
    kept_from = 0
    depth = 0  # div nesting inside the quote being skipped; 0: not in a quote
    for tag in _DIV_TAG.finditer(html):
        if depth:
            depth += -1 if tag.group(1) else 1
            if depth == 0:
                kept_from = tag.end()
        elif not tag.group(1) and _HTML_QUOTE_OPEN.match(html, tag.start()):
            pieces.append(html[kept_from:tag.start()])
            depth = 1
    if not depth:  # a quote never closed runs to the end
        pieces.append(html[kept_from:])
    return "".join(pieces)
