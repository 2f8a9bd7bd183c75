"""How the archive's typed values are checked and written down, one rule per kind of
value, shared by the API, the admin pages, the CLI and the importers. Pure."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from nexusmail.i18n import Msg, message_of, msg
from nexusmail.mail.addresses import check_address

LANGUAGES = ("en", "it", "ro")
# How a contact wants to be reached.
CONTACT_CHANNELS = ("email", "phone")
# How a request reached us.
REQUEST_CHANNELS = ("mail", "phone", "visit", "web", "schedule")
PRIORITIES = ("low", "normal", "high", "urgent")

# RFC 1035 section 2.3.4: at most 63 octets a label, 253 a name.
_LABEL = re.compile(r"^[0-9a-z](?:[0-9a-z-]{0,61}[0-9a-z])?$")
MAX_DOMAIN_CHARS = 253
# More than this on one customer is a paste of a list, not a company's domains.
MAX_DOMAINS = 50


class InvalidRecord(ValueError):
    """A value the archive refuses; the message starts with the field at fault. The API
    answers it in English (`str()`), the admin pages in the operator's language
    (`message`, translated when shown)."""

    def __init__(self, message: str | Msg) -> None:
        super().__init__(str(message))
        self.message = message


def refusal_message(exc: Exception) -> str | Msg:
    """What a page shows for a refused change: the catalogued message of a refused
    value (so it is translated), else the exception's own text."""
    return exc.message if isinstance(exc, InvalidRecord) else message_of(exc)


def text_or_none(value: Any) -> str | None:
    """Stripped text, None for empty or missing: a blank field means "not known"."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def tax_id(value: Any) -> str | None:
    """A tax id (P.IVA, codice fiscale, CIF, CUI) written one way: spaces dropped,
    upper case. `it 0123 4567 890` and `IT01234567890` are the same company, and the
    importers find customers by this form."""
    text = text_or_none(value)
    return "".join(text.split()).upper() if text else None


def email(value: Any, field: str = "email") -> str | None:
    text = text_or_none(value)
    if text is None:
        return None
    try:
        return check_address(text)
    except ValueError as exc:
        raise InvalidRecord(msg("{field}: {problem}", field=field, problem=str(exc))) from None


def mail_domain(value: str, field: str = "mail_domains") -> str:
    """`@Rossi-SRL.it` -> `rossi-srl.it`; InvalidRecord when it is not a domain name."""
    domain = value.strip().lstrip("@").rstrip(".").lower()
    labels = domain.split(".")
    if (len(domain) > MAX_DOMAIN_CHARS or len(labels) < 2
            or not all(_LABEL.match(label) for label in labels)):
        raise InvalidRecord(msg("{field}: {value} is not a mail domain", field=field,
                                value=repr(value)))
    return domain


def mail_domains(values: Any, field: str = "mail_domains") -> list[str]:
    """A list of domains, or one string of them separated by spaces, commas or `|`; each
    checked, duplicates dropped, order kept."""
    if values is None:
        return []
    items = re.split(r"[\s,;|]+", values) if isinstance(values, str) else list(values)
    found = [mail_domain(str(v), field) for v in items if str(v).strip()]
    if len(found) > MAX_DOMAINS:
        raise InvalidRecord(msg("{field}: more than {most} domains", field=field,
                                most=MAX_DOMAINS))
    return list(dict.fromkeys(found))


def choice(value: Any, allowed: tuple[str, ...], field: str) -> str | None:
    text = text_or_none(value)
    if text is None:
        return None
    if text.lower() not in allowed:
        names = ", ".join(repr(a) for a in allowed)
        raise InvalidRecord(msg("{field}: should be one of {names}", field=field, names=names))
    return text.lower()


def iso_date(value: Any, field: str) -> str | None:
    """A calendar date as YYYY-MM-DD text (how the store keeps dates)."""
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidRecord(msg("{field}: should be a date as YYYY-MM-DD",
                                field=field)) from None
