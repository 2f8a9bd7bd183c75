"""The Italian and Romanian catalogues against the texts in the code (the admin pages,
the mails' refusals and everything the `nexusmail` command prints): nothing missing,
nothing left fuzzy, placeholders intact, and the compiled .mo files current."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "nexusmail" / "locale"
# The sources and options `make i18n-extract` reads, from babel.cfg itself: a module
# added there (the CLI's, say) is checked here too.
with (ROOT / "babel.cfg").open(encoding="utf-8") as _config:
    METHODS, OPTIONS = parse_mapping_cfg(_config)
KEYWORDS = {**DEFAULT_KEYWORDS, "msg": None, "N_": None}
_PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def texts_in_the_code() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), METHODS, OPTIONS, KEYWORDS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.fixture(scope="module")
def code_texts() -> set[str]:
    return texts_in_the_code()


@pytest.mark.parametrize("language", ["it", "ro"])
def test_every_text_of_the_pages_is_translated(language: str, code_texts: set[str]) -> None:
    """Each text the admin pages, their messages and the CLI use has a translation that
    is not fuzzy, with the same placeholders (a lost `{number}` would crash the page)."""
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale=language)
    translated = {}
    for message in catalogue:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{language}: {key!r} has no translation"
        assert not message.fuzzy, f"{language}: {key!r} is fuzzy"
        wanted = set(_PLACEHOLDER.findall(key))
        for string in strings:
            # A plural form may leave out the number ("o dată") but never add a name.
            assert set(_PLACEHOLDER.findall(string)) <= wanted | {"%(num)s"}, (key, string)
        translated[key] = strings
    missing = sorted(code_texts - translated.keys())
    assert not missing, f"{language}: not in the catalogue (make i18n-update): {missing}"


def test_the_cli_is_among_the_sources(code_texts: set[str]) -> None:
    """babel.cfg covers the command's modules: a result, an error and a table title of
    theirs are among the texts the catalogues must hold."""
    assert {"Revoked API token {id}.", "--count should be from 1 to {most}",
            "CUSTOMER", "invalid configuration in {source}:"} <= code_texts


@pytest.mark.parametrize("language", ["it", "ro"])
def test_compiled_catalogues_match_their_sources(language: str, tmp_path: Path) -> None:
    """The shipped .mo says exactly what its .po says (make i18n-compile)."""
    folder = LOCALE / language / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as handle:
        catalogue = read_po(handle, locale=language)
    fresh = tmp_path / "fresh.mo"
    with fresh.open("wb") as handle:
        write_mo(handle, catalogue)
    with fresh.open("rb") as a, (folder / "messages.mo").open("rb") as b:
        expected, shipped = gettext.GNUTranslations(a), gettext.GNUTranslations(b)
    for message in catalogue:
        if message.id and not isinstance(message.id, tuple):
            assert shipped.gettext(message.id) == expected.gettext(message.id), message.id
        elif message.id:
            for count in (1, 2, 5, 20, 101):
                assert shipped.ngettext(*message.id, count) == \
                    expected.ngettext(*message.id, count), message.id
