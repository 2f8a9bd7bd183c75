"""Reading a technician's reply: quote stripping and the confirm/reject verdict."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.mail.html import html_to_text, sanitize_html
from nexusmail.mail.quote_strip import _fold_table, cut_html_quote, fold
from nexusmail.mail.reply_reading import ReplyReading, Verdict, read_reply, strip_quote


def _load_cases() -> ModuleType:
    # The table lives with the fixtures, outside any package: load it by its path.
    path = Path(__file__).resolve().parents[1] / "fixtures" / "replies" / "cases.py"
    spec = importlib.util.spec_from_file_location("reply_cases", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cases = _load_cases()
ReplyCase = cases.ReplyCase


@pytest.mark.parametrize("case", cases.CASES, ids=[case.name for case in cases.CASES])
def test_fixture_reply(case: ReplyCase) -> None:
    """Each fixture reply gives its expected verdict, stripped body, reason and hours."""
    assert read_reply(case.text, case.html) == ReplyReading(
        Verdict(case.verdict), case.reason, case.body, case.work_minutes, case.travel_minutes)


_HTML_CASES = [case for case in cases.CASES if case.html]


@pytest.mark.parametrize("case", _HTML_CASES, ids=[case.name for case in _HTML_CASES])
def test_html_fixture_reads_alike_after_parsing(case: ReplyCase) -> None:
    """ParsedMail's sanitized HTML (no class/id) and its HTML-derived text read alike."""
    html = case[2]
    assert html is not None
    expected = read_reply(None, html)
    assert read_reply(None, sanitize_html(html)) == expected
    assert read_reply(html_to_text(html)) == expected


def test_fixture_table_is_wide_enough() -> None:
    """The table keeps at least 150 uniquely named cases with every verdict."""
    names = [case.name for case in cases.CASES]
    assert len(names) >= 150
    assert len(set(names)) == len(names)
    assert {case.verdict for case in cases.CASES} == {v.value for v in Verdict}


# -- The pattern table, one client at a time ----------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        "On Mon, 3 Mar 2025 at 10:00, Dispatch <d@firm.test> wrote:",
        "Il giorno lun 3 mar 2025 alle ore 10:00 Dispatch <d@firm.test> ha scritto:",
        "În data de lun., 3 mar. 2025 la 10:00, Dispatch <d@firm.test> a scris:",
        "In data de lun., 3 mar. 2025 la 10:00, Dispatch <d@firm.test> a scris:",
        "On 3 Mar 2025, at 10:00, Dispatch wrote:",
        "Il giorno 3 mar 2025, alle ore 10:00, Dispatch ha scritto:",
        "Pe 3 mar. 2025, la 10:00, Dispatch a scris:",
        "On 03/03/2025 10:00, Dispatch wrote:",
        "Il 03/03/2025 10:00, Dispatch ha scritto:",
        "În data de 03.03.2025 10:00, Dispatch a scris:",
        "Dispatch <d@firm.test> ha scritto:",
        "2025-03-03 10:00 GMT+01:00 Dispatch <d@firm.test>:",
        "On Mon, 3 Mar 2025 at 10:00, Dispatch <d@firm.test>\nwrote:",
        "Il giorno lun 3 mar 2025 alle ore 10:00 Dispatch <\nd@firm.test> ha scritto:",
        "În data de lun., 3 mar. 2025 la 10:00, Dispatch a\nscris:",
    ],
)
def test_attribution_lines(header: str) -> None:
    """Each client's attribution, wrapped or not, goes with the quote below it."""
    assert strip_quote(f"Reply here\n\n{header}\n> quoted CONFIRM\n") == "Reply here"
    assert strip_quote(f"Reply here\n\n{header}\n\nunquoted original CONFIRM\n") == "Reply here"


@pytest.mark.parametrize(
    "block",
    [
        "From: D <d@firm.test>\nSent: Monday\nTo: L\nSubject: [#42]",
        "*From:* D <d@firm.test>\n*Sent:* Monday\n*To:* L\n*Subject:* [#42]",
        "Da: D <d@firm.test>\nInviato: lunedì\nA: L\nOggetto: [#42]",
        "De la: D <d@firm.test>\nTrimis: luni\nCătre: L\nSubiect: [#42]",
        "-----Original Message-----\nFrom: D",
        "-----Messaggio originale-----\nDa: D",
        "-----Mesaj original-----\nDe la: D",
        "________________________________\nFrom: D",
        "---------- Forwarded message ---------\nFrom: D",
    ],
)
def test_outlook_blocks_cut_the_rest(block: str) -> None:
    """Outlook's header blocks and separators drop everything below them."""
    assert strip_quote(f"Reply here\n\n{block}\n\nReply CONFIRM or REJECT\n") == "Reply here"


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone", "Sent from my Android", "Sent from Outlook for iOS",
        "Get Outlook for iOS<https://aka.ms/o0ukef>", "Scarica Outlook per iOS",
        "Inviato da iPhone", "Inviato dal mio smartphone", "Trimis de pe iPhone",
        "Trimis de pe Samsung", "-- ", "--",
    ],
)
def test_footers_and_signatures_cut_the_rest(footer: str) -> None:
    """Mobile footers and the "-- " signature separator drop everything below them."""
    assert strip_quote(f"Reply here\n\n{footer}\nLuca Bianchi\n+39 333 1234567") == "Reply here"


@pytest.mark.parametrize(
    "line",
    [
        "Da: domani sono libero",          # Romanian "yes" / Italian "from", not a header
        "Inviato da Marco il rapporto ieri",
        "On Thursday I can come",
        "Il cliente ha scritto ieri",
        "-- see below",
    ],
)
def test_ordinary_lines_are_kept(line: str) -> None:
    """Lines that only resemble a header or footer stay in the body."""
    assert strip_quote(f"{line}\nsecond line") == f"{line}\nsecond line"


def test_fold_keeps_offsets_and_drops_diacritics() -> None:
    """Folding lower-cases, drops Italian/Romanian diacritics and keeps the length."""
    text = "ÎN DATA ȘI ŞI ȚARĂ ţară Sì PERCHÉ – d’accordo"
    assert fold(text) == "in data si si tara tara si perche – d'accordo"
    assert len(fold(text)) == len(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2200), max_size=40) | st.text(max_size=40))
def test_fold_is_its_character_table(text: str) -> None:
    """Folding maps each character by the table of base letters (an unlisted one stays),
    whichever way it is carried out: plain ASCII lowered, other text by lookup."""
    table = _fold_table()
    assert fold(text) == "".join(table.get(ord(char), char) for char in text)


def test_html_quote_cut_keeps_text_after_gmail_quote() -> None:
    """Gmail's quote div goes whole, nested divs included; text after it stays."""
    html = '<div class="gmail_quote"><div>a<div>b</div></div>CONFIRM</div><p>Rifiuto</p>'
    assert cut_html_quote(html) == "<p>Rifiuto</p>"


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Si è rotto il furgone, non posso venire", Verdict.REJECTED),
        ("Da domani sono in ferie", Verdict.UNCLEAR),
        ("can't confirm", Verdict.REJECTED),
        ("cannot accept", Verdict.REJECTED),
        ("non posso purtroppo confermare", Verdict.REJECTED),
        ("Nu pot confirma", Verdict.REJECTED),
        ("Non ci sono giovedì", Verdict.REJECTED),
        ("Non c'è problema", Verdict.CONFIRMED),
        ("nu e nicio problema", Verdict.CONFIRMED),
        ("Make sure the customer is home", Verdict.UNCLEAR),
        ("Not sure yet", Verdict.UNCLEAR),
        ("Nu știu încă", Verdict.UNCLEAR),
        ("Ti confermo domani", Verdict.UNCLEAR),
        ("Confermo o rifiuto, decidi tu", Verdict.UNCLEAR),
        ("CONFIRMĂ", Verdict.CONFIRMED),
        ("Refuz", Verdict.REJECTED),
        ("Respingo, troppo lontano", Verdict.REJECTED),
    ],
)
def test_verdict_words(text: str, verdict: Verdict) -> None:
    """Negations win over the word they negate; questions and doubts decide nothing."""
    assert read_reply(text).verdict is verdict


def test_verdict_is_read_from_the_first_lines_only() -> None:
    """A "no" deep in a long reply does not decide it."""
    text = "Ciao\nho visto\nil cliente\nè a Milano\nvicino\nal parco\nNo."
    assert read_reply(text).verdict is Verdict.UNCLEAR


def test_closing_is_not_part_of_the_reason() -> None:
    """The reason stops before "Grazie" and the name below it."""
    reading = read_reply("Rifiuto: sono in ferie\nfino al 15\n\nGrazie,\nLuca")
    assert reading.reason == "sono in ferie\nfino al 15"


def test_no_part_at_all_is_unclear() -> None:
    """A reply with neither a text nor an HTML part is unclear and has an empty body."""
    assert read_reply(None, None) == ReplyReading(Verdict.UNCLEAR, "", "")


# -- Properties ---------------------------------------------------------------------------
# Technician text that cannot form a header, footer or quote marker: no ':', '>', '-', '_'.
_SAFE_LINE = st.text(
    alphabet=st.sampled_from("abcdefghilmnoprstuvzăâîșțàèéìòù ABCDEFGHILMNOPRSTUVZ0123456789,.!?'"),
    max_size=40,
)
# Any text on one line: a lone CR inside a line does not occur in mail (CRLF only).
_ANY_LINE = st.text(st.characters(blacklist_characters="\r\n"), max_size=60)
_HEADERS = st.sampled_from([
    "On Mon, 3 Mar 2025 at 10:00, Dispatch <d@firm.test> wrote:",
    "Il giorno lun 3 mar 2025 alle ore 10:00 Dispatch <d@firm.test> ha scritto:",
    "În data de lun., 3 mar. 2025 la 10:00, Dispatch <d@firm.test> a\nscris:",
])


def _expected(lines: list[str]) -> str:
    """strip_quote's output shape: trailing spaces gone, blank runs as one, trimmed."""
    kept = [line.rstrip() for line in lines]
    text = "\n".join(line if line.strip() else "" for line in kept)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip("\n")


@settings(max_examples=150, deadline=None)
@given(st.lists(_SAFE_LINE, max_size=6), _HEADERS, st.lists(_ANY_LINE, max_size=8))
def test_strip_never_returns_quoted_text(
    technician: list[str], header: str, original: list[str]
) -> None:
    """Top-posted over a Gmail quote of anything, the result is exactly what was written."""
    text = "\n".join(technician) + "\n\n" + header + "\n" + "\n".join(f"> {q}" for q in original)
    assert strip_quote(text) == _expected(technician)


@settings(max_examples=150, deadline=None)
@given(st.lists(_SAFE_LINE, max_size=6), _HEADERS, st.lists(_ANY_LINE, max_size=8))
def test_strip_never_returns_unquoted_original(
    technician: list[str], header: str, original: list[str]
) -> None:
    """With the original below the attribution unquoted (HTML turned to text), none of it stays."""
    below = "\n".join(_unquoted(line) for line in original)
    text = "\n".join(technician) + "\n\n" + header + "\n\n" + below
    result = strip_quote(text)
    written = {line.rstrip() for line in technician}
    assert all(line in written for line in result.split("\n") if line)


def _unquoted(line: str) -> str:
    while line and (line[0].isspace() or line[0] == ">"):
        line = line[1:]
    return line


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text()), st.one_of(st.none(), st.text()))
def test_read_reply_never_raises(text: str | None, html: str | None) -> None:
    """Any text and any HTML give a reading whose body is plain, stripped text."""
    reading = read_reply(text, html)
    assert isinstance(reading.verdict, Verdict)
    assert reading.body == reading.body.strip("\n")


# -- Work reports -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Fatto", Verdict.DONE),
        ("Done.", Verdict.DONE),
        ("Terminat", Verdict.DONE),
        ("Gata", Verdict.UNCLEAR),             # "ready" as often as "done": needs hours
        ("Gata, 2 ore", Verdict.DONE),
        ("Non ho finito", Verdict.NOT_DONE),
        ("nu am putut termina", Verdict.NOT_DONE),
        ("Can't finish today, need a part", Verdict.NOT_DONE),
        ("Fatto, ma devo tornare per il collaudo", Verdict.NOT_DONE),
        ("Forse finito", Verdict.UNCLEAR),
        ("Probably done", Verdict.UNCLEAR),
        ("Il fatto è che non c'era nessuno", Verdict.UNCLEAR),
        ("Rifiuto, l'ho già fatto ieri", Verdict.REJECTED),
        ("Ok, appena finito qui passo", Verdict.UNCLEAR),
        ("Done with the other job, coming now", Verdict.UNCLEAR),
        ("Finito?", Verdict.UNCLEAR),
        ("Ok, fatto il sopralluogo, torno domani con il pezzo", Verdict.NOT_DONE),
        ("Finito per oggi, domani continuo", Verdict.NOT_DONE),
        ("Finished for today", Verdict.NOT_DONE),
        ("Done with the diagnosis, will return Monday with parts", Verdict.NOT_DONE),
        ("Terminat pentru azi, continui mâine", Verdict.NOT_DONE),
        ("Gata diagnoza, revin mâine cu piesa", Verdict.NOT_DONE),
        ("Fatto metà lavoro", Verdict.NOT_DONE),
        ("Ok fatto", Verdict.DONE),
        ("Tutto a posto, 2 ore", Verdict.DONE),
        ("Tutto ok", Verdict.UNCLEAR),        # the plan or the job? without hours: neither
        ("✅ Fatto, 2 ore", Verdict.DONE),
        ("👍 sure", Verdict.CONFIRMED),
        ("l'ho fatto ieri", Verdict.UNCLEAR),
    ],
)
def test_report_words(text: str, verdict: Verdict) -> None:
    """Done and not-done phrases; not-done wins, a doubt or a question reports nothing."""
    assert read_reply(text).verdict is verdict


def test_a_done_report_without_hours_is_flagged() -> None:
    """A report is still done when no time can be read; its hours are flagged unread."""
    reading = read_reply("Fatto, sostituita la valvola")
    assert reading.verdict is Verdict.DONE
    assert reading.work_minutes is None
    assert reading.hours_unread
    assert not read_reply("Fatto, 2 ore").hours_unread


def test_hours_in_the_signature_are_not_read() -> None:
    """A slogan's "24h" or "3 ore" under the name is not the technician's time."""
    reading = read_reply("Fatto\n\nMario Rossi\nRossi Impianti: interventi in 3 ore")
    assert reading.verdict is Verdict.DONE
    assert reading.work_minutes is None
