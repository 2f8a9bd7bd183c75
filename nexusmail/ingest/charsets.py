"""Turn mail bytes into text when the declared charset is missing, unknown or lying.

Field practice for Italian and Romanian senders: old Outlook and webmail declare
iso-8859-1 while writing cp1250 (ş ţ ă become º þ ã), mobile clients declare utf-8
over cp1252 bytes, and some mailers send `unknown-8bit` or nothing at all (RFC 6532
allows raw utf-8 in headers now, so 8-bit bytes without a label are common).
We never raise: the last resort decodes with replacement characters.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections import Counter

# Labels that say "I don't know" (RFC 1428 `unknown-8bit`, Sendmail's `x-unknown`).
_UNKNOWN_LABELS = frozenset(
    {"", "unknown", "unknown-8bit", "x-unknown", "x-user-defined", "default", "none", "charset"}
)
# Codec names Python does not know but mailers write.
_ALIASES = {
    "latin2": "iso-8859-2",
    "latin-2": "iso-8859-2",
    "iso8859-2": "iso-8859-2",
    "x-cp1250": "cp1250",
    "x-cp1252": "cp1252",
    "win-1250": "cp1250",
    "win-1252": "cp1252",
    "ansi_x3.4-1968": "ascii",
    "utf8": "utf-8",
    "x-mac-roman": "mac-roman",
    "ks_c_5601-1987": "cp949",  # Outlook's label for Korean; Python spells it differently
}
# Labels mailers write for a charset while sending its larger superset: a gb2312 label
# over GBK bytes, iso-8859-1 over Windows quotes and the euro sign, euc-kr over cp949.
# Each superset decodes everything its subset does the same way, so using it is free.
_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "iso8859-1": "cp1252", "euc_kr": "cp949",
    "shift_jis": "cp932", "big5": "big5hkscs", "iso8859-9": "cp1254", "tis-620": "cp874",
    "iso8859-11": "cp874", "euc_jp": "euc_jis_2004",
}  # fmt: skip
# 7-bit charsets that are not ASCII supersets: ASCII bytes mean something else in them.
_SEVEN_BIT_PREFIXES = ("iso2022", "utf-7", "hz")
_ASCII_NAMES = frozenset({"ascii"})
_UTF8 = "utf-8"
# Codecs that can produce lone surrogates; their output is checked before it is used.
_SURROGATE_RISK = frozenset({"utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32"})
# Tried in this order when the declared charset fails; the best-scoring one wins.
_FALLBACKS = ("cp1252", "cp1250", "iso8859-2")
# The 8-bit charsets we weigh against each other. Each decodes a byte on its own, and
# ASCII bytes the same way in all of them, so they are compared on the non-ASCII runs
# alone (what `_score` looks at): the same winner, at a fraction of the cost of
# decoding and scanning an 8 KB body three or four times.
_SINGLE_BYTE = frozenset({"iso8859-1", "cp1252", "iso8859-15", "cp1250", "iso8859-2"})
# What each of them reads for the bytes 0x80-0xff (U+FFFD where it reads nothing).
_HIGH_CHARS = {name: bytes(range(0x80, 0x100)).decode(name, "replace") for name in _SINGLE_BYTE}

# Letters and punctuation our users really write (it, ro, en) in the 8-bit range.
_ITALIAN = "àèéìòùÀÈÉÌÒÙ"
_ROMANIAN = "ăâîșțşţĂÂÎȘȚŞŢ"
_COMMON = "€„“”‘’«»–—…°·çÇüÜöÖäÄß£§©®\u00a0"
_PLAUSIBLE = frozenset(_ITALIAN + _ROMANIAN + _COMMON)
# Letters alone cannot tell cp1252 "ã" (Portuguese) from cp1250 "ă" (Romanian): the
# same byte. The ASCII words around them can, and read the same in every candidate, so
# the language is guessed once from them and then weighs each candidate's letters.
_LETTERS_OF = {
    "it": frozenset(_ITALIAN),
    "ro": frozenset(_ROMANIAN),
    "pt": frozenset("ãõçáéíóúâêôàÃÕÇÁÉÍÓÚÂÊÔÀ"),
    "es": frozenset("ñáéíóúüÑÁÉÍÓÚÜ¿¡"),
    "fr": frozenset("éèêàçùûôîëïœÉÈÊÀÇ"),
}
_ONLY_ROMANIAN = frozenset("ășțşţĂȘȚŞŢ")
_WORDS_OF = {
    "it": b"il di che non per una sono con del della grazie buongiorno salve vorrei ho mi"
          b" cordiali saluti anche abbiamo funziona guasto caldaia",
    "ro": b"si nu pentru este cu va multumesc buna ziua am un sa de mai rog ca avem pe din"
          b" centrala",
    "pt": b"do da dos das que para com uma os em por obrigado obrigada bom dia voce tem"
          b" foi pelo pela ao caldeira muito",
    "es": b"el los las del que para con una por gracias hola buenos dias usted tiene"
          b" muy pero caldera",
    "fr": b"le les des du que pour avec une est merci bonjour vous nous pas sur",
}
_LANGUAGES_OF_WORD: dict[bytes, tuple[str, ...]] = {}
for _language, _words in _WORDS_OF.items():
    for _word in _words.split():
        _LANGUAGES_OF_WORD[_word] = (*_LANGUAGES_OF_WORD.get(_word, ()), _language)
_LETTERS_ONLY = bytes(byte if chr(byte).isascii() and chr(byte).isalpha() else 0x20
                      for byte in range(256))
_LANGUAGE_SAMPLE = 4096  # bytes; the words of a few sentences are enough
# RFC 2047 encoded-word, loosely: some mailers leave spaces inside the encoded text.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=")
# utf-8 read as a single-byte charset: "Ã¨" for "è", "Ä\x83" for "ă".
_MOJIBAKE_LEADS = "ÂÃÄÅÈÉ"
_MOJIBAKE = re.compile(
    f"[{_MOJIBAKE_LEADS}][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u2013-\u2122]"
)


def decode_bytes(payload: bytes, declared: str | None) -> str:
    """Decode `payload` as text: the declared charset when it is honest, else a fallback."""
    codec = _codec_name(declared)
    if payload.isascii():
        if codec is not None and codec.startswith(_SEVEN_BIT_PREFIXES):
            # ISO-2022-JP and UTF-7 write non-ASCII text with ASCII bytes (escape
            # sequences, "+...-" runs): read as ASCII they are gibberish.
            text = _try_decode(payload, codec)
            if text is not None:
                return text
        # The common case, and safe for every other label (a declared utf-16 over ASCII
        # bytes is a lie we do not believe).
        return payload.decode("ascii")
    if codec is not None and codec not in _ASCII_NAMES:
        text = _try_decode(payload, codec)
        if text is not None and _believable(payload, codec, text):
            return _repair_double_utf8(text) if codec == _UTF8 else text
    return _guess(payload, preferred=codec)


def decode_header(value: str) -> str:
    """RFC 2047 encoded-words and raw 8-bit bytes (RFC 6532) to text, tolerantly.

    Tolerates what the stdlib rejects: spaces inside an encoded-word, a multi-byte
    character split across two words (PHP mailers), bad base64 padding, unknown charsets.
    """
    if "=?" not in value:
        # compat32 keeps undecodable 8-bit header bytes as surrogate escapes.
        return _decode_raw(value)
    out: list[str] = []
    position = 0
    pending = b""
    charset = ""
    after_word = False
    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        # RFC 2047 §6.2: whitespace between two encoded-words is not part of the text.
        adjacent = after_word and not gap.strip(" \t\r\n")
        if not adjacent or match.group(1).lower() != charset:
            if pending:
                out.append(decode_bytes(pending, charset))
            pending = b""
            if not adjacent:
                out.append(_decode_raw(gap))
        charset = match.group(1).lower()
        # Bytes of adjacent words in one charset are joined before decoding: mailers
        # split a multi-byte character across two words.
        pending += _decode_word(match.group(2), match.group(3))
        position = match.end()
        after_word = True
    if pending:
        out.append(decode_bytes(pending, charset))
    out.append(_decode_raw(value[position:]))
    return "".join(out)


def _decode_raw(value: str) -> str:
    """Text around encoded-words: raw 8-bit bytes (kept as surrogate escapes) decoded."""
    if has_surrogates(value):
        return decode_bytes(_raw_bytes(value), None)
    return value


def _raw_bytes(text: str) -> bytes:
    """The bytes behind `text`: surrogate escapes back to raw bytes, the rest as utf-8."""
    try:
        return text.encode(_UTF8, "surrogateescape")
    except UnicodeEncodeError:
        # A lone surrogate outside the escape range stands for no byte at all.
        return text.encode(_UTF8, "replace")


def _decode_word(encoding: str, text: str) -> bytes:
    if encoding in "Bb":
        cleaned = re.sub(r"[^A-Za-z0-9+/]", "", text)
        extra = len(cleaned) % 4
        # A lone trailing sextet cannot be a byte: drop it; otherwise restore padding.
        cleaned = cleaned[:-1] if extra == 1 else cleaned + "=" * (-extra % 4)
        try:
            return binascii.a2b_base64(cleaned)
        except binascii.Error:
            return text.encode("ascii", "replace")
    # A raw 8-bit byte inside the word (kept as a surrogate escape) is a byte of the
    # word's charset, like its =XX escapes: keep it as that byte, not as "?".
    data = _raw_bytes(text.replace("_", " "))
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


def has_surrogates(value: str) -> bool:
    """True when compat32 kept undecodable 8-bit bytes as surrogate escapes."""
    return not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value)


def normalize_romanian(text: str) -> str:
    """Cedilla ş ţ Ş Ţ (cp1250, iso-8859-2, old keyboards) to the correct comma-below letters."""
    # str.replace per letter: str.translate with a table walks every character in
    # Python-level lookups and cost ~0.3 ms on an ordinary 8 KB body.
    for cedilla, comma in _CEDILLA_TO_COMMA:
        if cedilla in text:
            text = text.replace(cedilla, comma)
    return text


_CEDILLA_TO_COMMA = (("ş", "ș"), ("ţ", "ț"), ("Ş", "Ș"), ("Ţ", "Ț"))


def _codec_name(declared: str | None) -> str | None:
    """The Python codec name for a declared label, or None when unknown or meaningless."""
    if declared is None:
        return None
    label = declared.strip().strip("\"'").lower()
    # RFC 2231 language suffix: "utf-8*it".
    label = label.split("*", 1)[0]
    if label in _UNKNOWN_LABELS:
        return None
    label = _ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None  # base64, rot13, zlib ... are codecs but not charsets
    name = _canonical(info.name)
    return _SUPERSETS.get(name, name)


def _canonical(name: str) -> str:
    return {"latin-1": "iso8859-1", "iso8859_1": "iso8859-1", "us-ascii": "ascii"}.get(name, name)


def _try_decode(payload: bytes, codec: str) -> str | None:
    try:
        text = payload.decode(codec)
    except (UnicodeError, LookupError, ValueError, TypeError):
        return None
    if codec in _SURROGATE_RISK:
        try:
            text.encode(_UTF8)
        except UnicodeEncodeError:
            return None
    return text


def _believable(payload: bytes, codec: str, text: str) -> bool:
    """A successful decode with a single-byte charset proves nothing: check the result."""
    if codec == _UTF8 or codec.startswith(("utf-", "cp9", "euc", "gb", "big5", "shift", "iso2022")):
        return True
    if _is_utf8(payload):
        return False  # valid multi-byte utf-8 almost never happens by chance in 8-bit text
    if codec not in _SINGLE_BYTE:
        return True  # a charset we have no better guess for (cyrillic, greek, ...)
    scores = _sample_scores(payload, (*_FALLBACKS, codec), _language_of(payload))
    return scores[codec] >= max(scores[name] for name in _FALLBACKS)


def _sample_scores(payload: bytes, names: tuple[str, ...], language: str | None) -> dict[str, int]:
    """`_score` of `payload` in each single-byte charset of `names`, from one count of
    its non-ASCII bytes: in such a charset each byte is one character, so the counts
    of the characters follow from the counts of the bytes (decoding and counting the
    text once a charset cost ~0.25 ms per 8-bit part)."""
    sample = _high_runs(payload)
    byte_counts = Counter(sample)
    scores: dict[str, int] = {}
    for name in dict.fromkeys(names):  # the declared charset may be a fallback too
        text = _try_decode(sample, name)
        if text is None:
            scores[name] = _UNREADABLE
            continue
        high_chars = _HIGH_CHARS[name]
        char_counts = Counter[str]()
        for byte, count in byte_counts.items():
            if byte >= 0x80:
                char_counts[high_chars[byte - 0x80]] += count
        scores[name] = _weigh(char_counts, language) - 3 * len(_MOJIBAKE.findall(text))
    return scores


def _high_runs(payload: bytes) -> bytes:
    """The runs of non-ASCII bytes, space-separated: enough to score 8-bit charsets."""
    # Every ASCII byte turned into a space, then split at C speed: a regex findall of
    # the runs cost ~0.1 ms on a 4 KB Romanian part (one object per short run).
    return b" ".join(payload.translate(_ASCII_AS_SPACE).split())


_ASCII_AS_SPACE = bytes(byte if byte >= 0x80 else 0x20 for byte in range(256))


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode(_UTF8)
    except UnicodeDecodeError:
        return False
    return True


def _guess(payload: bytes, *, preferred: str | None) -> str:
    if _is_utf8(payload):
        return _repair_double_utf8(payload.decode(_UTF8))
    best_name: str | None = None
    best_score = -(10**9)
    # The declared charset (if it decoded at all) keeps ties: it was a hint, not a lie.
    candidates = ((preferred,) if preferred else ()) + _FALLBACKS
    language = _language_of(payload)
    if all(name in _SINGLE_BYTE for name in candidates):
        scores = _sample_scores(payload, candidates, language)
    else:
        scores = {name: _score(_try_decode(payload, name), language) for name in candidates}
    for name in candidates:
        score = scores[name]
        if score != _UNREADABLE and score > best_score:
            best_name, best_score = name, score
    if best_name is not None:
        best_text = _try_decode(payload, best_name)
        if best_text is not None:
            return best_text
    return payload.decode(_UTF8, errors="replace")


def _language_of(payload: bytes) -> str | None:
    """The language the ASCII words of the first few KB say clearly, else None."""
    # Counted at C speed, then only the ~90 telling words looked up: a Counter.update
    # per word of the sample cost ~0.2 ms per 8-bit text part.
    # Every byte but a letter turned into a space and split, at C speed: the same
    # words as a regex findall of [A-Za-z]+, at half its cost.
    words = Counter(payload[:_LANGUAGE_SAMPLE].lower().translate(_LETTERS_ONLY).split())
    scores: Counter[str] = Counter()
    for word, languages in _LANGUAGES_OF_WORD.items():
        count = words.get(word)
        if count:
            for language in languages:
                scores[language] += count
    ranked = scores.most_common(2)
    if not ranked or ranked[0][1] < 2:
        return None
    if len(ranked) > 1 and ranked[0][1] < 1.5 * ranked[1][1]:
        return None
    return ranked[0][0]


def _score(text: str | None, language: str | None = None) -> int:
    """How much a decoded text looks like it/ro/en: letters we expect up, controls down.

    With a language known from the words, its letters count more and letters only
    Romanian has count against (and the reverse for a Romanian text).
    """
    if text is None:
        return _UNREADABLE
    # Only the non-ASCII characters matter; a regex finds them at C speed, so a long
    # mostly-ASCII body costs a scan, not a Python loop over every character.
    char_counts = Counter(_NON_ASCII.findall(text))
    return _weigh(char_counts, language) - 3 * len(_MOJIBAKE.findall(text))


def _weigh(char_counts: Counter[str], language: str | None) -> int:
    """The letters' part of `_score`, from how often each non-ASCII character appears."""
    score = 0
    native = _LETTERS_OF.get(language or "", frozenset())
    for ch, count in char_counts.items():
        if ch in native:
            score += 3 * count
        elif native and ch in _ONLY_ROMANIAN:
            score -= 3 * count
        elif ch in _PLAUSIBLE:
            score += 2 * count
        elif ch < "\xa0":
            score -= 5 * count  # C1 control: certainly the wrong charset
        else:
            score -= count
    return score


_UNREADABLE = -(10**9)  # the score of a text the charset cannot decode
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _repair_double_utf8(text: str) -> str:
    """utf-8 bytes read as cp1252 and encoded to utf-8 again ("Ã¨" for "è")."""
    # Most texts have none of the letters such a pair starts with: a few C-speed
    # look-ups then spare the regex's scan (~30 us on a 4 KB part, for every utf-8 part).
    if not any(lead in text for lead in _MOJIBAKE_LEADS) or not _MOJIBAKE.search(text):
        return text
    for single_byte in ("cp1252", "iso8859-1"):
        try:
            return text.encode(single_byte).decode(_UTF8)
        except UnicodeError:
            continue
    return text
