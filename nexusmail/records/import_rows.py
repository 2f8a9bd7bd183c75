"""The columns of a customer or equipment import, and one row's values checked.

Column names are the JSON field names of the API; the Italian and Romanian names
firms' spreadsheets use are accepted beside them (compared without case, accents or
punctuation, so "P.IVA", "Partita IVA" and "partita_iva" are one name). Values follow
the archive's own rules (records.fields), so an imported tax id or domain is written
as the API writes it and found again by the next import. Pure: a row's strings in, a
typed record or the reason it is refused out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from nexusmail.i18n import msg
from nexusmail.records import fields
from nexusmail.records.fields import InvalidRecord
from nexusmail.tickets.mail_domains import FreeMail

CUSTOMER_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "name": ("nome", "ragione sociale", "denominazione", "cliente", "nominativo",
             "denumire", "denumire client", "nume", "client", "company", "customer"),
    "tax_id": ("partita iva", "p iva", "piva", "p iva cf", "codice fiscale", "cod fiscale",
               "cf", "vat", "vat number", "vat id", "cif", "cui", "cif cui", "cod fiscal",
               "cod unic de inregistrare", "cod identificare fiscala"),
    "address": ("indirizzo", "sede", "sede legale", "adresa", "adresa sediu", "sediu"),
    "phone": ("telefono", "tel", "cellulare", "mobile", "telefon", "mobil", "nr telefon"),
    "work_phone": ("work phone", "telefono ufficio", "tel ufficio", "telefono lavoro",
                   "telefon serviciu", "telefon birou"),
    "email": ("e mail", "mail", "posta elettronica", "indirizzo email", "adresa email",
              "adresa de email"),
    "language": ("lingua", "limba"),
    "notes": ("note", "annotazioni", "observatii", "mentiuni", "notite"),
    "mail_domains": ("mail domains", "domains", "domini", "dominio", "domini email",
                     "domeniu", "domenii", "domenii email"),
}
EQUIPMENT_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "customer_tax_id": ("customer tax id", "partita iva cliente", "p iva cliente",
                        "piva cliente", "codice fiscale cliente", "cf cliente",
                        "cif client", "cui client", "cod fiscal client"),
    "customer_id": ("customer id", "id cliente", "id client"),
    "site": ("sede", "sito", "luogo", "ubicazione", "punto di lavoro", "locatie",
             "punct de lucru", "punct lucru", "site name"),
    "serial": ("serial number", "matricola", "numero di serie", "numero serie", "n serie",
               "nr serie", "numar serie", "numar de serie", "serie", "s n", "sn"),
    "model": ("modello", "prodotto", "product", "produs", "model produs"),
    "description": ("descrizione", "descriere"),
    "installed_on": ("installed on", "data installazione", "installato il",
                     "data instalare", "data instalarii", "data montaj"),
    "warranty_until": ("warranty until", "garanzia fino al", "scadenza garanzia",
                       "fine garanzia", "garantie pana la", "expirare garantie",
                       "sfarsit garantie"),
    "notes": ("note", "annotazioni", "observatii", "mentiuni", "notite"),
}

MAX_TEXT_CHARS = 2000
MAX_NAME_CHARS = 300
_LANGUAGES = {
    "en": "en", "english": "en", "inglese": "en", "engleza": "en",
    "it": "it", "italian": "it", "italiano": "it", "italiana": "it",
    "ro": "ro", "romanian": "ro", "romeno": "ro", "rumeno": "ro", "romana": "ro",
    "română": "ro",
}  # fmt: skip
# Excel shows a long number it was not told is text as 1.23457E+11: the digits are lost.
_SCIENTIFIC = re.compile(r"\d[.,]\d+E\+\d+", re.IGNORECASE)
_DATE_FORMATS = (
    re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"),
    re.compile(r"(?P<d>\d{1,2})[-/.](?P<m>\d{1,2})[-/.](?P<y>\d{4}|\d{2})"),
)
# Excel adds a midnight to a date cell of a date-time column.
_MIDNIGHT = re.compile(r"\s+0?0[:.]00(?:[:.]00)?$")


class RowRefused(ValueError):
    """The row cannot be imported; the message says which value and why."""


@dataclass(frozen=True)
class CustomerRow:
    line: int
    name: str
    tax_id: str | None
    email: str | None
    address: str = ""
    phone: str = ""
    work_phone: str = ""
    language: str | None = None
    notes: str = ""
    mail_domains: tuple[str, ...] = ()
    # The fields the file has a column for: only those change an existing customer.
    given: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EquipmentRow:
    line: int
    customer_tax_id: str | None
    customer_id: int | None
    serial: str
    site: str = ""
    model: str = ""
    description: str = ""
    installed_on: date | None = None
    warranty_until: date | None = None
    notes: str = ""
    given: frozenset[str] = frozenset()


def missing_customer_columns(fields: tuple[str, ...]) -> list[str]:
    """What the header must name for customers to be imported again without duplicates."""
    missing = [] if "name" in fields else ["name"]
    if "tax_id" not in fields and "email" not in fields:
        missing.append("tax_id or email")
    return missing


def missing_equipment_columns(fields: tuple[str, ...]) -> list[str]:
    missing = [] if "serial" in fields else ["serial"]
    if "customer_tax_id" not in fields and "customer_id" not in fields:
        missing.append("customer_tax_id or customer_id")
    return missing


def customer_row(line: int, values: Mapping[str, str], free_mail: FreeMail) -> CustomerRow:
    """The row as a customer, or RowRefused."""
    name = _text(values, "name", MAX_NAME_CHARS)
    if not name:
        raise RowRefused(msg("name is empty"))
    tax_id = tax_id_of(values.get("tax_id", ""))
    email = _email(values.get("email", ""))
    if tax_id is None and email is None:
        raise RowRefused(msg("tax_id and email are both empty: one is needed to find the"
                             " customer again on the next import"))
    return CustomerRow(
        line, name, tax_id, email,
        address=_text(values, "address"), phone=_text(values, "phone", 50),
        work_phone=_text(values, "work_phone", 50),
        language=_language(values.get("language", "")), notes=_text(values, "notes"),
        mail_domains=_domains(values.get("mail_domains", ""), free_mail),
        given=frozenset(values))


def equipment_row(line: int, values: Mapping[str, str]) -> EquipmentRow:
    """The row as a machine of the installed base, or RowRefused."""
    serial = _text(values, "serial", 100)
    if not serial:
        raise RowRefused(msg("serial is empty"))
    _refuse_scientific("serial", serial)
    tax_id = tax_id_of(values.get("customer_tax_id", ""), "customer_tax_id")
    customer_id = _customer_id(values.get("customer_id", ""))
    if tax_id is None and customer_id is None:
        raise RowRefused(msg("customer_tax_id and customer_id are both empty"))
    return EquipmentRow(
        line, tax_id, customer_id, serial, site=_text(values, "site", MAX_NAME_CHARS),
        model=_text(values, "model", MAX_NAME_CHARS), description=_text(values, "description"),
        installed_on=parse_date("installed_on", values.get("installed_on", "")),
        warranty_until=parse_date("warranty_until", values.get("warranty_until", "")),
        notes=_text(values, "notes"), given=frozenset(values))


def tax_id_of(value: str, name: str = "tax_id") -> str | None:
    """A tax id as the archive stores and compares it (spaces dropped, upper case:
    "it 0123 4567 890" -> "IT01234567890"); None when empty."""
    cleaned = fields.tax_id(value)
    if cleaned is None:
        return None
    _refuse_scientific(name, value)
    if len(cleaned) > 40 or not all(ch.isalnum() or ch in ".-/" for ch in cleaned):
        raise RowRefused(msg("{name} {value!r} is not a tax id", name=name,
                             value=value.strip()))
    return cleaned


def parse_date(name: str, value: str) -> date | None:
    """ISO (2024-03-01) or day first as Italian and Romanian Excel write it (01/03/2024,
    1.3.2024, 01-03-24); None when empty."""
    text = _MIDNIGHT.sub("", value.strip())
    if not text:
        return None
    for pattern in _DATE_FORMATS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        year = int(match["y"])
        year += 2000 if year < 100 else 0
        try:
            return date(year, int(match["m"]), int(match["d"]))
        except ValueError:
            break
    raise RowRefused(msg("{name} {value!r} is not a date (write 2024-03-31 or 31/03/2024)",
                         name=name, value=value.strip()))


def _text(values: Mapping[str, str], name: str, limit: int = MAX_TEXT_CHARS) -> str:
    value = values.get(name, "").strip()
    if len(value) > limit:
        raise RowRefused(msg("{name} is longer than {count} characters", name=name,
                             count=limit))
    return value


def _email(value: str) -> str | None:
    try:
        return fields.email(value)
    except InvalidRecord:
        raise RowRefused(msg("email {value!r} is not an email address",
                             value=value.strip())) from None


def _language(value: str) -> str | None:
    key = value.strip().casefold()
    if not key:
        return None
    if key not in _LANGUAGES:
        raise RowRefused(msg("language {value!r} is not one of en, it, ro",
                             value=value.strip()))
    return _LANGUAGES[key]


def _domains(value: str, free_mail: FreeMail) -> tuple[str, ...]:
    """Domains separated by spaces or "|" (or commas, semicolons), each checked."""
    try:
        domains = tuple(fields.mail_domains(value))
    except InvalidRecord as exc:
        raise RowRefused(str(exc).replace("mail_domains: ", "mail domain ")) from None
    for domain in domains:
        if free_mail.is_free(domain):
            raise RowRefused(msg("mail domain {domain!r} is a free-mail domain shared by"
                                 " unrelated people: it cannot name one customer",
                                 domain=domain))
    return domains


def _customer_id(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise RowRefused(msg("customer_id {value!r} is not a customer number", value=value))
    return int(value)


def _refuse_scientific(name: str, value: str) -> None:
    if _SCIENTIFIC.fullmatch(value.strip()):
        raise RowRefused(msg("{name} {value!r} was shortened by Excel: format the column as"
                             " text and export again", name=name, value=value.strip()))
