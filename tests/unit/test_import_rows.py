"""One imported row checked: the values a customer or a machine needs, dates and tax ids
as Excel writes them, and a clear reason for each value refused."""

from __future__ import annotations

from datetime import date

import pytest

from nexusmail.records.import_rows import (
    RowRefused,
    customer_row,
    equipment_row,
    missing_customer_columns,
    missing_equipment_columns,
    parse_date,
    tax_id_of,
)
from nexusmail.tickets.mail_domains import FreeMail

FREE = FreeMail()


def test_customer_row_full() -> None:
    """Every customer field is read, cleaned and typed; the given fields are remembered."""
    row = customer_row(7, {
        "name": " Rossi S.r.l. ", "tax_id": "it 0123 4567 890", "email": "Info@Rossi-SRL.it",
        "language": "Italiano", "mail_domains": "rossi-srl.it | Rossi.IT  rossi-srl.it",
        "phone": "011 555", "notes": ""}, FREE)
    assert (row.line, row.name, row.tax_id, row.email) == (
        7, "Rossi S.r.l.", "IT01234567890", "info@rossi-srl.it")
    assert row.language == "it"
    assert row.mail_domains == ("rossi-srl.it", "rossi.it")
    assert row.given == {"name", "tax_id", "email", "language", "mail_domains", "phone",
                         "notes"}


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"name": "", "tax_id": "1"}, "name is empty"),
        ({"name": "A"}, "tax_id and email are both empty"),
        ({"name": "A", "email": "not an address"}, "is not an email address"),
        ({"name": "A", "tax_id": "1.23457E+11"}, "shortened by Excel"),
        ({"name": "A", "tax_id": "12#4"}, "is not a tax id"),
        ({"name": "A", "tax_id": "1", "mail_domains": "a.it " * 51}, "more than 50"),
        ({"name": "A", "tax_id": "1", "language": "de"}, "not one of en, it, ro"),
        ({"name": "A", "tax_id": "1", "mail_domains": "gmail.com"}, "free-mail domain"),
        ({"name": "A", "tax_id": "1", "mail_domains": "rossi"}, "is not a mail domain"),
        ({"name": "A" * 301, "tax_id": "1"}, "longer than 300"),
    ],
)
def test_customer_row_refused(values: dict[str, str], reason: str) -> None:
    """A customer row is refused with the value at fault named."""
    with pytest.raises(RowRefused, match=reason):
        customer_row(2, values, FREE)


def test_equipment_row_full() -> None:
    """Every equipment field is read; dates in Italian or Romanian form become dates."""
    row = equipment_row(3, {
        "customer_tax_id": "ro 123 456 78", "site": "Magazzino", "serial": " AB1234 ",
        "model": "Vaillant ecoTEC", "installed_on": "01/03/2024 00:00",
        "warranty_until": "1.3.2026"})
    assert (row.customer_tax_id, row.customer_id, row.serial, row.site) == (
        "RO12345678", None, "AB1234", "Magazzino")
    assert (row.installed_on, row.warranty_until) == (date(2024, 3, 1), date(2026, 3, 1))


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"customer_id": "1", "serial": ""}, "serial is empty"),
        ({"serial": "AB1"}, "customer_tax_id and customer_id are both empty"),
        ({"customer_id": "x1", "serial": "AB1"}, "not a customer number"),
        ({"customer_id": "1", "serial": "4.71E+12"}, "shortened by Excel"),
        ({"customer_id": "1", "serial": "AB1", "installed_on": "31/02/2024"}, "not a date"),
        ({"customer_id": "1", "serial": "AB1", "warranty_until": "domani"}, "not a date"),
    ],
)
def test_equipment_row_refused(values: dict[str, str], reason: str) -> None:
    """An equipment row is refused with the value at fault named."""
    with pytest.raises(RowRefused, match=reason):
        equipment_row(2, values)


@pytest.mark.parametrize(
    ("text", "day"),
    [("2024-03-31", date(2024, 3, 31)), ("31/03/2024", date(2024, 3, 31)),
     ("31.03.2024", date(2024, 3, 31)), ("31-3-24", date(2024, 3, 31)),
     ("2024/3/1", date(2024, 3, 1)), ("01/03/2024 0:00:00", date(2024, 3, 1)),
     ("", None), ("  ", None)],
)
def test_parse_date(text: str, day: date | None) -> None:
    """ISO dates and day-first dates with "/", "." or "-" are read."""
    assert parse_date("installed_on", text) == day


@pytest.mark.parametrize(
    ("text", "tax_id"),
    [("IT01234567890", "IT01234567890"), ("rssmra80a01h501u", "RSSMRA80A01H501U"),
     ("RO 123 456 78", "RO12345678"), ("", None), ("  ", None)],
)
def test_tax_id_of(text: str, tax_id: str | None) -> None:
    """Tax ids are stored as the archive writes them: upper case, without spaces."""
    assert tax_id_of(text) == tax_id


def test_missing_columns() -> None:
    """The header must name what finds a record again on the next import."""
    assert missing_customer_columns(("name", "email")) == []
    assert missing_customer_columns(("phone",)) == ["name", "tax_id or email"]
    assert missing_equipment_columns(("serial", "customer_id")) == []
    assert missing_equipment_columns(("model",)) == ["serial",
                                                     "customer_tax_id or customer_id"]
