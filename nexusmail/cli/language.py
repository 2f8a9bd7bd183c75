"""The language a `nexusmail` command speaks, and its texts, dates and numbers in it.

The language is the one the terminal's locale names (LANGUAGE, then LC_ALL, LC_MESSAGES,
LANG, as gettext programs read them: `LANG=it_IT.UTF-8`), when it is Italian, Romanian
or English; otherwise `[web] default_language`, the office's language; otherwise
English. Texts are written in English with `msg(...)` and translated through the same
catalogues as the admin page. Times are shown in the company's time zone
(`[scheduler] timezone`): dd/mm/yyyy in Italian and Romanian, and ISO dates in English,
which a script can compare and sort as well as a person can read.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, TextIO

from babel.numbers import format_decimal

from nexusmail.i18n import (
    LABELS,
    LANGUAGES,
    N_,
    SOURCE_LANGUAGE,
    Formats,
    Msg,
    aware_moment,
    translations,
)

# The locale variables, strongest first (POSIX: LC_ALL overrides LC_MESSAGES, which
# overrides LANG; GNU gettext's LANGUAGE list comes before all three).
_LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")
_NEUTRAL_LOCALES = ("", "C", "POSIX")
# Whether an employee, an operator or a token may act. Their own texts: in Italian and
# Romanian the word agrees with those nouns, unlike the schedules' "active" of LABELS.
_ACCOUNT_STATES = {True: N_("active (employee, operator, token)"),
                   False: N_("inactive (employee, operator, token)")}


def locale_language(environ: Mapping[str, str]) -> str | None:
    """Our language that the environment's locale names, or None (unset, "C", another
    language). LANGUAGE (`ro:en`) counts only beside a real locale, as in gettext."""
    locale = next((environ[name] for name in _LOCALE_VARIABLES if environ.get(name)), "")
    if locale.partition(".")[0] in _NEUTRAL_LOCALES:
        return None
    for wanted in environ.get("LANGUAGE", "").split(":"):
        if _primary(wanted) in LANGUAGES:
            return _primary(wanted)
    return _primary(locale) if _primary(locale) in LANGUAGES else None


def _primary(tag: str) -> str:
    """`it_IT.UTF-8@euro` -> `it`."""
    return tag.partition(".")[0].partition("@")[0].partition("_")[0].partition("-")[0].lower()


def choose_language(environ: Mapping[str, str], default_language: str | None) -> str:
    """The locale's language, else the configured default, else English."""
    return locale_language(environ) or default_language or SOURCE_LANGUAGE


@dataclass(frozen=True)
class Speech:
    """How one run of the CLI writes what it prints: `language`, times in `zone`."""

    language: str = SOURCE_LANGUAGE
    zone: tzinfo = UTC

    @property
    def is_source(self) -> bool:
        return self.language == SOURCE_LANGUAGE

    def text(self, message: str | Msg) -> str:
        """A message in this language (a plain string is already final)."""
        return message.translated(self.language) if isinstance(message, Msg) else message

    def label(self, marked: str) -> str:
        """A text marked with `N_` (a column title), translated."""
        return translations(self.language).gettext(marked)

    def word(self, value: str) -> str:
        """A stored word (`on_hold`, `confirmed`): its label in Italian and Romanian; as
        stored in English, where scripts look for it."""
        if self.is_source or value not in LABELS:
            return value
        return translations(self.language).gettext(LABELS[value])

    def account_state(self, active: bool) -> str:
        """Whether an employee, an operator or a token is active ("active" and
        "inactive" in English, as stored words are)."""
        if self.is_source:
            return "active" if active else "inactive"
        return self.label(_ACCOUNT_STATES[active])

    def moment(self, value: str | datetime | None) -> str:
        """A stored timestamp to the minute in the company's zone; None as "-"."""
        if not value:
            return "-"
        if self.is_source:
            return local_minute(value, self.zone)
        return Formats(self.language, self.zone).moment(value)

    def day(self, value: str | date | None) -> str:
        """A calendar date; None as "-"."""
        if not value:
            return "-"
        if self.is_source:
            return value.isoformat() if isinstance(value, date) else value
        return Formats(self.language, self.zone).day(value)

    def number(self, value: float) -> str:
        """A count or an amount: 12.345 in Italy and Romania, 12,345 in English."""
        return format_decimal(value, locale=self.language)


def local_minute(value: str | datetime | None, zone: tzinfo) -> str:
    """A stored timestamp as "YYYY-MM-DD HH:MM" in `zone` (the company's); unreadable
    values as they are, None as "-"."""
    if not value:
        return "-"
    moment = aware_moment(value)
    if moment is None:
        return str(value)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


# One command per process (or per main() call in the tests): main() sets the run's
# Speech here once its settings are read, so that the command modules need not pass a
# language through every function that prints.
_ENGLISH = Speech()
_current: ContextVar[Speech] = ContextVar("cli_speech", default=_ENGLISH)


def speech() -> Speech:
    """The running command's Speech."""
    return _current.get()


@contextmanager
def speaking(chosen: Speech) -> Iterator[None]:
    """Run the block with `chosen` as the command's Speech, the previous one after."""
    token = _current.set(chosen)
    try:
        yield
    finally:
        _current.reset(token)


def text(message: str | Msg) -> str:
    """`message` in the running command's language."""
    return speech().text(message)


def say(message: str | Msg, file: TextIO | None = None, **print_options: Any) -> None:
    """Print `message` in the running command's language."""
    print(text(message), file=file, **print_options)
