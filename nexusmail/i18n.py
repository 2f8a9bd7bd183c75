"""The operators' languages: translations of what they read, and dates and numbers as
their country writes them.

Texts are written in English in the code and the templates and translated through
gettext catalogues (`nexusmail/locale/<language>/LC_MESSAGES/messages.po`, compiled to
`.mo`; `make i18n-extract`, `i18n-update` and `i18n-compile` keep them current).
Values stored as words (`open`, `high`, `confirmed`...) are shown through `label()`,
never raw. Dates are in the company's time zone and four-digit years everywhere
(03/12/2026 14:05 in Italy and Romania), formatted by Babel for the language.
"""

from __future__ import annotations

import functools
import gettext
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from importlib import resources
from typing import Any

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

LANGUAGES = ("en", "it", "ro")
SOURCE_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "it": "Italiano", "ro": "Română"}

# dd/MM/yyyy is how Italian and Romanian offices write dates (Babel's own short
# formats have two-digit years, and Romanian's uses dots).
_MOMENT_PATTERNS = {"en": "d MMM yyyy, HH:mm", "it": "dd/MM/yyyy HH:mm", "ro": "dd/MM/yyyy HH:mm"}
_DAY_PATTERNS = {"en": "d MMM yyyy", "it": "dd/MM/yyyy", "ro": "dd/MM/yyyy"}


def N_(text: str) -> str:
    """Marks `text` for the catalogues without translating it here."""
    return text


# Stored words as operators read them (the keys are what the store and the API use).
LABELS = {
    # intervention status
    "open": N_("open"), "on_hold": N_("on hold"), "resolved": N_("resolved"),
    "closed": N_("closed"),
    # priority
    "low": N_("low"), "normal": N_("normal"), "high": N_("high"), "urgent": N_("urgent"),
    # assignment status and reply verdicts
    "pending": N_("pending"), "confirmed": N_("confirmed"), "rejected": N_("rejected"),
    "unclear": N_("unclear"), "done": N_("done"), "not_done": N_("not done"),
    "taken": N_("taken"),
    # needs attention
    "unverified": N_("unverified"), "unassigned": N_("unassigned"),
    "mail_after_close": N_("mail after close"), "hours_unread": N_("hours not read"),
    # where a case came from
    "email": N_("mail"), "api": N_("entered by hand"), "schedule": N_("service schedule"),
    "phone": N_("phone"), "visit": N_("visit"), "web": N_("web form"),
    # kinds of activity (phone and visit above)
    "work": N_("work"), "remote": N_("remote session"), "workshop": N_("workshop"),
    "travel": N_("travel"),
    # delivery of what we sent
    "sent": N_("sent"), "failed": N_("failed"), "queued": N_("queued"),
    # schedules
    "active": N_("active"), "paused": N_("paused"), "inactive": N_("inactive"),
    "weekly": N_("weekly"), "monthly": N_("monthly"), "quarterly": N_("quarterly"),
    "yearly": N_("yearly"), "same_day": N_("same day of the month"),
    "last_day": N_("last day of the month"), "nth_weekday": N_("same weekday of the month"),
    "opened": N_("opened"), "skipped": N_("skipped"),
    # deadlines: which one, and the list's deadline filter
    "response": N_("response"), "resolution": N_("resolution"), "overdue": N_("overdue"),
    "today": N_("due today"),
    # action sequences: a run's state, a step's state, the usual actions (visit above)
    "running": N_("running"), "stopped": N_("stopped"), "planned": N_("planned"),
    "scheduled": N_("scheduled"), "assigned": N_("assigned"), "blocked": N_("blocked"),
    "cancelled": N_("cancelled"), "call": N_("phone call"), "mail": N_("mail"),
    "quote": N_("quote"), "check": N_("check"),
    # reasons for closing and suspending ([tickets] close_reasons, hold_reasons)
    "fixed": N_("fixed"), "replaced": N_("part replaced"),
    "not_repairable": N_("not repairable"), "customer_cancelled": N_("cancelled by the customer"),
    "duplicate": N_("duplicate"), "no_answer": N_("customer not answering"),
    "waiting_parts": N_("waiting for parts"), "waiting_customer": N_("waiting for the customer"),
    "waiting_quote": N_("waiting for the quote's approval"),
    "site_not_accessible": N_("site not accessible"),
    # operators' roles
    "admin": N_("administrator"), "dispatcher": N_("dispatcher"), "viewer": N_("viewer"),
    # languages of employees and customers
    "en": N_("English"), "it": N_("Italian"), "ro": N_("Romanian"),
}


# A form's fields as a refusal names them to an Italian or Romanian reader: the label the
# form shows beside the field. The keys are the field names of the forms and the API;
# English keeps them as they are, the names the API's clients and the README use.
FIELD_LABELS = {
    # a case entered by hand, and its links
    "customer_email": N_("Customer email"), "customer_name": N_("Customer name"),
    "subject": N_("Subject"), "description": N_("Description"),
    "request_type": N_("Request type"), "priority": N_("Priority"),
    "desired_from": N_("Desired from"), "desired_to": N_("Desired until"),
    "assignees": N_("Assigned to"), "contact_email": N_("Contact"), "site_id": N_("Site"),
    "equipment_serial": N_("Machine"), "channel": N_("Came by"), "language": N_("Language"),
    # action sequences and their steps
    "code": N_("Code"), "notes": N_("Notes"), "trigger_request_type": N_("Request type"),
    "steps": N_("Steps"), "action": N_("Action"), "employee_email": N_("Employee"),
    "team": N_("Team"), "expected_hours": N_("Expected hours"),
    "postpone_days": N_("Days before the next step"),
    # service schedules
    "interval": N_("Repeats"), "first_date": N_("First date"),
    "lead_days": N_("Days ahead to open it"), "every": N_("Every"),
    "contract_ref": N_("Contract"), "until": N_("Until"), "count": N_("How many times"),
    "day_rule": N_("Day of the month"),
    # the customer archive and request types
    "name": N_("Name"), "tax_id": N_("Tax id"), "address": N_("Address"),
    "phone": N_("Phone"), "work_phone": N_("Work phone"), "email": N_("Email"),
    "mail_domains": N_("Mail domains"), "owner": N_("Owner"), "verified": N_("Verified"),
    "serial": N_("Serial number"), "model": N_("Model"), "installed_on": N_("Installed on"),
    "warranty_until": N_("Warranty until"), "role": N_("Role"),
    "preferred_channel": N_("Prefers"), "access_notes": N_("Access notes"),
    "customer_id": N_("Customer"), "default_priority": N_("Default priority"),
    "default_assignees": N_("Assigned by default"), "response_hours": N_("Response time"),
    "resolution_hours": N_("Resolution time"),
    "customer_closing_mail": N_("Closing mail to the customer"),
    "valid_from": N_("Valid from"), "valid_to": N_("Valid until"),
    "prepaid_hours": N_("Prepaid hours"), "type": N_("Type"),
}


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of `language` (English: the texts as written)."""
    if language not in LANGUAGES or language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    catalogue = resources.files("nexusmail") / "locale" / language / "LC_MESSAGES" / "messages.mo"
    with catalogue.open("rb") as handle:
        return gettext.GNUTranslations(handle)


def negotiate(accept_language: str) -> str | None:
    """The first of our languages a browser's Accept-Language asks for (by weight)."""
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().partition("-")[0].lower()
        if primary in LANGUAGES and weight > 0:
            wanted.append((-weight, position, primary))
    return min(wanted)[2] if wanted else None


@dataclass(frozen=True)
class Msg:
    """A message to show an operator, translated when it is shown (in their language):
    `text` is the English original with `{name}` placeholders filled from `params`."""

    text: str
    params: dict[str, Any] = field(default_factory=dict)

    def translated(self, language: str) -> str:
        # A value may itself be a message (a refusal quoting another one).
        params = {name: _translated(value, language) for name, value in self.params.items()}
        label = FIELD_LABELS.get(str(params.get("field")))
        if label is not None and language != SOURCE_LANGUAGE:
            params["field"] = translations(language).gettext(label)
        return translations(language).gettext(self.text).format(**params)

    def __str__(self) -> str:
        return self.text.format(**self.params)


class Word(str):
    """A stored word (`on_hold`) as a message's value: itself in the English text the
    API gives, its label (`in attesa`) when the message is translated for a page."""


def _translated(value: Any, language: str) -> Any:
    if isinstance(value, Msg):
        return value.translated(language)
    if isinstance(value, Word):
        return translations(language).gettext(LABELS.get(value, value))
    return value


def msg(text: str, **params: Any) -> Msg:
    """A message for the catalogues (`msg` is an extraction keyword), filled later."""
    return Msg(text, params)


def message_of(exc: BaseException) -> str | Msg:
    """What a refusal says to an operator. The domain raises its refusals with a `Msg`
    (`Conflict(msg("intervention {number} is closed", number=n))`): `str(exc)` stays
    the English text the API and the logs give, and a page translates this instead.
    Any other exception: its own text."""
    if exc.args and isinstance(exc.args[0], Msg):
        return exc.args[0]
    message = getattr(exc, "message", None)
    return message if isinstance(message, Msg) else str(exc)


def aware_moment(value: str | datetime) -> datetime | None:
    """A stored timestamp (ISO text or datetime) with its zone; None when it is
    unreadable or naive, for the caller to show as it is."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass(frozen=True)
class Formats:
    """Dates, times and numbers for one language, in the company's time zone."""

    language: str
    zone: tzinfo

    def moment(self, value: str | datetime | None) -> str:
        """A stored timestamp (ISO text or datetime), to the minute; a naive or
        unreadable one as it is."""
        if not value:
            return ""
        moment = aware_moment(value)
        if moment is None:
            return str(value)
        return format_datetime(moment, _MOMENT_PATTERNS[self.language], tzinfo=self.zone,
                               locale=self.language)

    def day(self, value: str | date | None) -> str:
        """A calendar date (ISO text or date)."""
        if not value:
            return ""
        day = value
        if isinstance(value, str):
            try:
                day = date.fromisoformat(value[:10])
            except ValueError:
                return value
        assert isinstance(day, date)
        return format_date(day, _DAY_PATTERNS[self.language], locale=self.language)

    def size(self, value: int) -> str:
        """A file size: 512 B, 1,5 KB (it/ro) or 1.5 KB (en)."""
        if value < 1024:
            return f"{value} B"
        scaled, unit = value / 1024, "KB"
        if scaled >= 1024:
            scaled, unit = scaled / 1024, "MB"
        return f"{format_decimal(scaled, '0.0', locale=self.language)} {unit}"
