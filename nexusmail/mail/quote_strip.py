"""What the technician wrote in a reply: quoted original, signature and footers removed.

A reply to an assignment mail carries that mail back (which says both CONFIRM and
REJECT), so the verdict must be read from the technician's own lines only. Mail clients
mark the quote in a handful of ways; each is one compiled pattern below, with the client
and language that writes it. Pure functions over text: no I/O, no clock.

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


# The table as a string indexed by code point: str.translate looks a dict up per
# character and raises (and clears) a KeyError for each one not in it, most of them;
# indexing a string is three times faster. Code points past its end (emoji) stay.
_FOLD_MAP = _fold_table()
_FOLD_END = max(_FOLD_MAP) + 1
_FOLD = "".join(map(_FOLD_MAP.get, range(_FOLD_END), map(chr, range(_FOLD_END))))


def fold(text: str) -> str:
    """Lower case without diacritics (ș/ş/s, ț/ţ/t, ă/â/a, î/i, ì/i), same length as `text`."""
    if text.isascii():
        # Most lines are plain ASCII, where the table only lowers A-Z and turns the
        # backtick into an apostrophe: lower() does that three times faster than a
        # table lookup per character.
        text = text.lower()
        return text.replace("`", "'") if "`" in text else text
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
    # A date or time first and the address last, every language: old Gmail
    # "2025-03-03 10:00 GMT+01:00 X <x@y>:", Yandex "30.09.2017, 18.30, "X" <x@y>:",
    # some webmails "11:00 AM, November 17, 2021, "X" <x@y>:".
    r"^\d.*<[^<>\s]+@[^<>\s]+>\s*:$",
)
# Any client, any opening, when the line names an address: "X <x@y> wrote:". Tried
# after the dated forms, which it would cut short when the client wrapped inside "<x@y>".
_NAMED_ATTRIBUTION = re.compile(r"^.*@.*\b(?:wrote|ha scritto|a scris)\s*:$")
# Some clients drop the colon ("On ..., X wrote"): believed only when the quote follows
# at once or dashes frame the line as a marker, Zoho "---- On ..., X wrote ----".
_WROTE_BARE = re.compile(r"\b(?:wrote|ha scritto|a scris)$")
# Dashes around an attribution: Zoho "---- On ... wrote ----", Zimbra "- On ..., X wrote:".
_FRAME = "-\u2013\u2014 "
# The last letters an attribution can end with: its colon, or a bare "wrote",
# "ha scritto", "a scris".
_ATTRIBUTION_LAST = frozenset(":eos")

# -- Header blocks of the original: "From: / Sent: / To: / Subject:" -------------------
# Outlook desktop and web, and Outlook mobile, in English / Italian / Romanian; Outlook
# plain text may bold the names ("*From:* X"), hence the stars removed before matching.
_HEADER_FROM = re.compile(r"^(?:from|da|de la|de)\s*:")                   # en / it / ro
_HEADER_OTHER = re.compile(
    r"^(?:sent|date|to|cc|subject"                   # Outlook en
    r"|inviato|data|a|oggetto"                       # Outlook it
    r"|trimis|catre|subiect)\s*:"                    # Outlook ro (Data: as in it)
)
_HEADER_DATE = re.compile(r"^(?:date|sent|data|inviato|trimis)\s*:")

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
    # Outlook mobile ads, en "Get Outlook for iOS<https://aka.ms/...>", it "Scarica
    # Outlook per iOS", ro "Descărcați Outlook pentru Android" / "Obțineți Outlook ...".
    r"^(?:get|scarica|ottieni|descarca\w*|obtine\w*) outlook (?:for|per|pentru)"
    r" (?:ios|android)\b.{0,60}$",
)
# Privacy (GDPR) and antivirus footers that mail servers and firms append below the
# signature, en / it / ro: their "se", "non" and "daca" are nobody's answer. Matched on
# the opening of the line only, as such notices are often one long paragraph.
_FOOTER_NOTICES = re.compile(
    r"^(?:ai sensi (?:del|dell'|degli|della)|informativa (?:sulla )?privacy|(?:avviso|nota)"
    r" di riservatezza|(?:il presente|questo) (?:messaggio|e-?mail|documento)(?: di posta)?"
    r" (?:e |puo |contiene |ed? |e' |potrebbe |[^.]{0,30}riservat|[^.]{0,30}destinat)"
    r"|le informazioni contenute|questa (?:e-?mail|mail|comunicazione) (?:e|e') stata"
    r" (?:controllata|verificata|scansionata|analizzata)|(?:e-?)?mail priva di virus"
    r"|acest (?:e-?mail|mesaj)(?: electronic)? (?:este|poate|contine|si |a fost|e |se )"
    r"|conform (?:regulamentului|gdpr|legii|prevederilor)|in conformitate cu (?:regulamentul"
    r"|gdpr|legea|prevederile)|informatiile (?:continute|cuprinse)|nota de confidentialitate"
    r"|this (?:e-?mail|message|communication)(?: and any [\w ]{0,30})? (?:is confidential"
    r"|is intended|may contain|contains confidential|has been (?:scanned|checked)"
    r"|was (?:scanned|checked)|is for the)|confidentiality notice|disclaimer\b"
    r"|privacy notice|the information (?:contained|in this)|virus-free"
    r"|(?:www\.)?avast\.com)"
)
_FOOTER_OPENING_CHARS = 60

# Each table is tried as one alternation: one scan per line instead of one per pattern.
_DATED_ATTRIBUTION = re.compile("|".join(f"(?:{p})" for p in _DATED_ATTRIBUTIONS))
_CUT_LINE = re.compile("|".join(f"(?:{p})" for p in _CUT_LINES))
_BLANK_RUNS = re.compile(r"\n{3,}")

# -- Mobile footers: "Sent from my iPhone", "Inviato da iPhone", "Trimis de pe Samsung" --
# The opening, then what names the device (matched on the folded line).
_FOOTER_OPENING = re.compile(
    r"^(?:sent (?:from|with|via)|inviato (?:da|dal|dalla|con)|trimis (?:de pe|cu|din|de))"
    r"\s+(?:(?:my|the|a|an|il mio|mio|la mia|il|la|un|una|mi|meu|telefonul meu) )?"
)
# A device or app named within the first words: "Sent from my Samsung Galaxy smartphone",
# "Inviato dal mio smartphone Huawei", "Sent from Outlook for Android".
_DEVICE_WORDS = frozenset({
    "iphone", "ipad", "android", "smartphone", "tablet", "telefon", "telefonul",
    "cellulare", "mobile", "dispozitiv", "dispozitivul", "outlook", "gmail", "yahoo",
    "libero", "mail", "bluemail", "aquamail", "samsung", "galaxy", "huawei", "xiaomi",
    "redmi", "honor", "oppo", "motorola", "blackberry", "windows", "pixel", "nokia",
    "oneplus", "sony", "xperia", "realme", "vivo", "posta", "virgilio", "aruba", "tiscali",
    "email", "e-mail", "thunderbird", "spark",
})
_DEVICE_WITHIN = 3         # words after the opening in which the device must be named
_FOOTER_MAX_WORDS = 8      # "Sent from my Samsung Galaxy S21 Ultra 5G": a footer is short
_WORD = re.compile(r"[^\s.,;:!?()<>]+")
_MODEL_WORD = re.compile(r"^(?:[A-Z][\w+-]*|[\w+-]*\d[\w+-]*)$")
# The openings of the three markers above as one pattern: a line of prose (most lines)
# is then ruled out by one match instead of four. A bolded Outlook field ("*From:*")
# goes the long way, as the header test removes its stars first.
_MARKER_OPENING = re.compile("|".join(
    f"(?:{pattern.pattern})" for pattern in (_CUT_LINE, _FOOTER_OPENING, _HEADER_FROM,
                                             _HEADER_DATE)))
# Attribution lines, header fields and footers are short; a longer line is someone's
# prose and no pattern is tried on it (the patterns' cost then never grows with it).
MAX_MARKER_CHARS = 400
# Clients wrap quoted text at 72-78 columns; a quoted line this long may have been cut.
_WRAP_WIDTH = 60


def strip_quote(text: str) -> str:
    """Only the lines the sender wrote: no quote, no signature, no mobile footer.

    Lines keep their text with trailing whitespace removed; runs of blank lines become
    one and the result has no leading or trailing blank line.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    stripped_lines = [line.strip() for line in lines]
    kept: list[str] = []
    for index, stripped in enumerate(stripped_lines):
        if not stripped:
            kept.append("")
            continue
        if stripped[0] == ">":  # a quoted line, at any depth ("> >", ">>")
            continue
        if index and _continues_quote(lines[index - 1], stripped) and _quoted_after(
                stripped_lines, index):
            continue  # a quoted line the client wrapped without its `>`
        long_line = len(stripped) > MAX_MARKER_CHARS
        folded = fold(stripped[:_FOOTER_OPENING_CHARS] if long_line else stripped)
        if index and _FOOTER_NOTICES.match(folded):
            break
        if long_line:  # prose, never a marker: no other pattern to try
            kept.append(lines[index].rstrip())
            continue
        if ("*" in folded or _MARKER_OPENING.match(folded)) and (
                _CUT_LINE.match(folded) or _is_mobile_footer(stripped, folded)
                or _starts_header_block(lines, index, folded)):
            break
        # An attribution's last letter (dashes aside) is its colon or that of a bare
        # "wrote": a line ending otherwise is none, as mending a soft break only adds
        # to its front. A line of dashes alone may close one begun above.
        ending = folded.rstrip(_FRAME)
        start = None
        quote_follows = False
        if not ending or ending[-1] in _ATTRIBUTION_LAST:
            quote_follows = _quoted_after(stripped_lines, index)
            start = _attribution_start(lines, index, folded, quote_follows)
        if start is not None:
            # The attribution may have been wrapped: its first lines were kept already.
            del kept[len(kept) - (index - start):]
            if quote_follows:
                continue  # only the `>` lines go; what follows them is the sender's again
            break
        kept.append(lines[index].rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip("\n")


def _attribution_start(lines: list[str], index: int, folded: str,
                       quote_follows: bool) -> int | None:
    """First line of an attribution ending at `index` (wrapped over up to 3 lines)."""
    start = index
    # An undecoded quoted-printable soft break ("=" ending a line) splits a word of the
    # attribution, even "wro=" / "te:": mend it before reading the line's end.
    while start > max(index - 3, 0) and lines[start - 1].rstrip().endswith("="):
        previous = lines[start - 1].strip()
        if len(previous) > MAX_MARKER_CHARS:
            break
        folded = fold(previous)[:-1] + folded
        start -= 1
    core = folded.rstrip(_FRAME)
    if not core.endswith(":"):
        framed = core != folded or folded.lstrip(_FRAME) != folded
        if not (framed or quote_follows) or not _WROTE_BARE.search(core):
            return None
        core += ":"
    elif not _WROTE_END.search(core):
        return None
    candidate = core
    named = None  # where a line naming an address starts, if no dated opening is found
    for first in range(start, max(start - 3, -1), -1):
        if first < start:
            previous = lines[first].strip()
            if not previous or previous[0] == ">" or len(previous) > MAX_MARKER_CHARS:
                break
            previous = fold(previous)
            candidate = (previous[:-1] if previous.endswith("=") else previous + " ") + candidate
        opening = candidate.lstrip(_FRAME)
        if _DATED_ATTRIBUTION.match(opening):
            return first
        if named is None and _NAMED_ATTRIBUTION.match(opening):
            named = first
    return named


def _is_mobile_footer(line: str, folded: str) -> bool:
    """A client's "sent from" line, not a sentence that starts like one: a device or app
    is named in its first words ("Sent from my Samsung Galaxy smartphone"), or all of it
    is a model name ("Sent from my Pixel 7a"); "Sent from my desk at the office, the
    mobile is off" is the technician's own sentence."""
    opening = _FOOTER_OPENING.match(folded)
    if opening is None:
        return False
    words = _WORD.findall(folded, opening.end())
    if not words or len(words) > _FOOTER_MAX_WORDS:
        return False
    if any(word in _DEVICE_WORDS for word in words[:_DEVICE_WITHIN]):
        return True
    return len(words) <= 4 and all(
        _MODEL_WORD.match(word) for word in _WORD.findall(line, opening.end()))


def _starts_header_block(lines: list[str], index: int, folded: str) -> bool:
    """Is this the first field of an Outlook header block? It is a `From:` with two
    more fields below, or (Hotmail, some webmails) a `Date:`/`Sent:` with a `From:` and
    one more field below it."""
    if "*" in folded:
        folded = folded.replace("*", "")
    opens_with_from = bool(_HEADER_FROM.match(folded))
    if not opens_with_from and not _HEADER_DATE.match(folded):
        return False
    fields = 0
    seen_from = opens_with_from
    for line in lines[index + 1:index + 7]:
        stripped = line.strip()
        if len(stripped) > MAX_MARKER_CHARS:
            return False
        other = fold(stripped.replace("*", ""))
        if not other:
            continue
        if _HEADER_FROM.match(other) and not seen_from:
            seen_from = True
        elif not _HEADER_OTHER.match(other):
            continue
        fields += 1
        if fields >= 2 and seen_from:
            return True
    return False


def _continues_quote(previous: str, line: str) -> bool:
    """Is `line` the tail of the quoted line above it, wrapped by a client that does not
    add `>` to the pieces? The line above was cut mid-sentence at about the usual width
    and this one goes on in lower case; a reply written between quotes starts a sentence
    (or is set off by a blank line)."""
    quoted = previous.lstrip()
    if not quoted.startswith(">"):
        return False
    quoted = quoted.lstrip("> ").rstrip()
    return (len(quoted) >= _WRAP_WIDTH and quoted[-1] not in ".!?:;"
            and line[0].islower())


def _quoted_after(stripped_lines: list[str], index: int) -> bool:
    """Is the first non-blank line after `index` quoted (`>`)? Asked only about
    non-blank lines (at most twice each), so the blank runs looked over by questions
    about two lines never overlap: linear in all, without a pass over every line first."""
    position = index + 1
    while position < len(stripped_lines):
        stripped = stripped_lines[position]
        if stripped:
            return stripped[0] == ">"
        position += 1
    return False


# -- HTML -----------------------------------------------------------------------------
# Outlook quotes without <blockquote>: the original follows a marker, and Outlook never
# writes below it, so the HTML is cut there. Gmail, Apple Mail and Thunderbird use
# <blockquote>, which html_to_text turns into `>` lines for strip_quote.
_HTML_CUTS = re.compile(
    r"<div\b[^<>]*\bid=[\"']?(?:appendonsend|divRplyFwdMsg)\b"       # Outlook web / new Outlook
    r"|<(?:div|span)\b[^<>]*\bid=[\"']?OLK_SRC_BODY_SECTION\b"        # Outlook for Mac
    r"|<hr\b[^<>]*\bid=[\"']?stopSpelling\b"                         # Outlook web, older
    r"|<div\b[^<>]*\bborder-top:\s*solid\s+#(?:E1E1E1|B5C4DF)\b",    # Outlook desktop
    re.IGNORECASE,
)
# Gmail's and Yahoo's quote wrapper, with the attribution inside: dropped whole, so a
# reply written below it (rare in Gmail HTML, but seen) is kept.
_HTML_QUOTE_OPEN = re.compile(
    r"<div\b[^<>]*\bclass=[\"']?(?:gmail_quote|yahoo_quoted|moz-cite-prefix"
    r"|zmail_extra|protonmail_quote)\b[^<>]*>",
    re.IGNORECASE,
)
_DIV_TAG = re.compile(r"<(/?)div\b[^<>]*>", re.IGNORECASE)


_BLOCKQUOTE = re.compile(r"<blockquote\b", re.IGNORECASE)
# The three as one pattern: one scan of the HTML instead of three.
_ANY_HTML_QUOTE = re.compile("|".join(f"(?:{pattern.pattern})" for pattern in (
    _HTML_CUTS, _HTML_QUOTE_OPEN, _BLOCKQUOTE)), re.IGNORECASE)


def has_html_quote(html: str) -> bool:
    """Does the HTML mark a quote by its structure (a client's quote div or marker, or a
    blockquote, which html_to_text turns into `>` lines)?"""
    return _ANY_HTML_QUOTE.search(html) is not None


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
