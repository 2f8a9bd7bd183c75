"""The reply reader's phrase table regrouped under first letters finds exactly what the
flat alternation of the same table finds."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexusmail.mail import reply_reading
from nexusmail.mail.phrase_scan import compile_phrase_groups, group_of
from nexusmail.mail.quote_strip import fold

_GROUPS = [(name, phrases) for name, _, _, _, phrases in reply_reading._TABLE]
# The table as one flat alternation, tried whole at every word start: the reference.
_FLAT = re.compile(r"\b(?=[a-z])(?:" + "|".join(
    rf"(?P<{name}>(?:{'|'.join(phrases)})\b)" for name, phrases in _GROUPS) + ")")


def _flat_matches(folded: str) -> list[tuple[int, int, str | None]]:
    return [(match.start(), match.end(), match.lastgroup) for match in _FLAT.finditer(folded)]


def _scan_matches(folded: str) -> list[tuple[int, int, str | None]]:
    return [(match.start(), match.end(), group_of(match.lastgroup or ""))
            for match in reply_reading._PHRASES.finditer(folded)]


def _fixture_lines() -> list[str]:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "replies" / "cases.py"
    spec = importlib.util.spec_from_file_location("reply_cases", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    lines: list[str] = []
    for case in module.CASES:
        for text in (case.text, case.body, case.reason):
            if text:
                lines.extend(fold(line) for line in text.split("\n"))
    return lines


def test_the_fixture_lines_match_alike() -> None:
    """Every line of every fixture reply (quote included) gives the same phrases, spans
    and groups under both patterns."""
    lines = _fixture_lines()
    assert sum(len(_flat_matches(line)) for line in lines) > 300  # the table is exercised
    for line in lines:
        assert _scan_matches(line) == _flat_matches(line), line


# Words of the table itself, so that random text lands on phrases and near misses.
_TABLE_WORDS = sorted({word for _, phrases in _GROUPS for phrase in phrases
                       for word in re.findall(r"[a-z']+", phrase)})
_PIECE = st.one_of(st.sampled_from(_TABLE_WORDS), st.sampled_from([" ", ", ", ". ", "? ", "-"]),
                   st.text(alphabet="abcdefghijklmnopqrstuvwxyz' ?,.", max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECE, max_size=30).map(" ".join))
def test_random_text_matches_alike(text: str) -> None:
    """Text built of the table's own words (and noise) gives the same matches."""
    assert _scan_matches(text) == _flat_matches(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_matches_alike(text: str) -> None:
    """Any folded text, non-Latin letters and digits included, gives the same matches."""
    folded = fold(text)
    assert _scan_matches(folded) == _flat_matches(folded)


def test_optional_openings_are_regrouped_in_order() -> None:
    """A phrase opening with an optional group is found under both of its first letters,
    and the group listed first still wins where both match."""
    pattern = compile_phrase_groups([("first", [r"(?:i )?don'?t know"]),
                                     ("second", [r"i don't", r"don't"])])
    found = [(m.group(), group_of(m.lastgroup or "")) for m in pattern.finditer(
        "i don't know; don't know; i don't care")]
    assert found == [("i don't know", "first"), ("don't know", "first"),
                     ("i don't", "second")]


@pytest.mark.parametrize("phrase", [r"\w+ fatto", r"[ab]c", r"a?bc", r"(?:ab)*c", r"(ok)",
                                    r"(?:|x)y", r"(?:ab)?"])
def test_an_opening_it_cannot_read_is_refused(phrase: str) -> None:
    """A phrase whose first letter cannot be told is refused, naming it, not misread."""
    with pytest.raises(ValueError, match="cannot tell the first letter"):
        compile_phrase_groups([("group", [phrase])])
