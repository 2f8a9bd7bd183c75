"""Spreadsheet exports read as Italian and Romanian Excel write them: UTF-8 with or
without a byte-order mark and the Windows code pages, ";" or "," between fields, a header
mapped by name and alias, unknown columns reported, bad lines reported by line number."""

from __future__ import annotations

import codecs

import pytest

from nexusmail.cli.csv_table import (
    TableError,
    decode_table,
    detect_delimiter,
    header_key,
    read_table,
)
from nexusmail.records.import_rows import CUSTOMER_COLUMNS, EQUIPMENT_COLUMNS

ITALIAN = (
    "Ragione sociale;P.IVA;Indirizzo;Telefono;E-mail;Colore preferito\r\n"
    "Rossi Caldaie S.r.l.;IT01234567890;Via Po 1, Torino;011 555;info@rossi-srl.it;blu\r\n"
    '"Bar Là, di Giò";02345678901;"Piazza Città 3";;bar@example.it;\r\n'
)
ROMANIAN = (
    "Denumire,CUI,Adresă,Telefon,Email,Limba\r\n"
    "Termoinstal SRL,RO12345678,\"Str. Ştefan cel Mare 5, Iaşi\",0232 111,office@termo.ro,ro\r\n"
)


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", b"", "utf-8"), ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
     ("cp1252", b"", "cp1252"), ("utf-16", b"", "utf-16")],
)
def test_italian_file_in_each_encoding(encoding: str, bom: bytes, expected: str) -> None:
    """The same Italian sheet reads the same whether Excel wrote UTF-8, UTF-8 with a
    BOM, Windows-1252 or "Unicode text"; the header is mapped by its Italian names."""
    table = read_table(bom + ITALIAN.encode(encoding), CUSTOMER_COLUMNS)
    assert table.encoding == expected
    assert table.delimiter == ";"
    assert table.fields == ("name", "tax_id", "address", "phone", "email")
    assert table.unknown_columns == ("Colore preferito",)
    assert table.errors == []
    assert [row.line for row in table.rows] == [2, 3]
    assert table.rows[1].values == {
        "name": "Bar Là, di Giò", "tax_id": "02345678901", "address": "Piazza Città 3",
        "phone": "", "email": "bar@example.it"}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1250"])
def test_romanian_file_with_commas(encoding: str) -> None:
    """A Romanian sheet separated by commas, in UTF-8 or Windows-1250, keeps its ş and
    ă and maps Romanian header names."""
    table = read_table(ROMANIAN.encode(encoding), CUSTOMER_COLUMNS)
    assert table.delimiter == ","
    assert table.fields == ("name", "tax_id", "address", "phone", "email", "language")
    assert table.rows[0].values["address"] == "Str. Ştefan cel Mare 5, Iaşi"
    assert table.errors == []


def test_bad_lines_are_reported_by_the_line_they_start_on() -> None:
    """A record with too many or too few fields, or a quote never closed, is an error
    naming its first line; the good records around it are read, and a value spanning
    lines keeps the line numbers of the next records right."""
    data = (
        b"name;tax_id;notes\n"
        b"Uno;111;\"due\nrighe\"\n"      # lines 2-3
        b"Due;222;x;oops\n"              # line 4: one field too many
        b"Tre;333\n"                     # line 5: one too few
        b"\n"                            # line 6: blank, skipped
        b"Quattro;444;;\n"               # line 7: a trailing empty field is fine
        b'Cinque;"555;x\n'               # line 8: the quote is never closed
        b"Sei;666;x\n"
    )
    table = read_table(data, CUSTOMER_COLUMNS)
    assert [(row.line, row.values["name"]) for row in table.rows] == [(2, "Uno"),
                                                                       (7, "Quattro")]
    assert table.rows[0].values["notes"] == "due\nrighe"
    assert [error.line for error in table.errors] == [4, 5, 8]
    assert "never closed" in str(table.errors[2])
    assert str(table.errors[0]).startswith("line 4: 4 fields, the header names 3")


def test_two_columns_for_one_field_take_the_first_value() -> None:
    """P.IVA and codice fiscale both name tax_id: the first with a value wins."""
    data = b"Nome;P.IVA;Codice fiscale\nA;;RSSMRA80A01H501U\nB;01234567890;RSSMRA80A01H501U\n"
    table = read_table(data, CUSTOMER_COLUMNS)
    assert [row.values["tax_id"] for row in table.rows] == ["RSSMRA80A01H501U",
                                                            "01234567890"]


def test_equipment_header_aliases() -> None:
    """Italian and Romanian equipment headers map to the equipment fields."""
    data = ("P.IVA cliente;Sede;Matricola;Modello;Data installazione;Scadenza garanzia;"
            "Număr serie\n").encode()
    assert read_table(data, EQUIPMENT_COLUMNS).fields == (
        "customer_tax_id", "site", "serial", "model", "installed_on", "warranty_until")


def test_a_file_without_a_header_is_refused() -> None:
    """An empty file (or blank lines only) says the first line must name the columns."""
    with pytest.raises(TableError, match="first line must name the columns"):
        read_table(b"\r\n  \r\n", CUSTOMER_COLUMNS)


@pytest.mark.parametrize(
    ("name", "key"),
    [("Număr serie", "numar serie"), ("P.IVA", "p iva"), ("tax_id", "tax id"),
     ("  E-Mail ", "e mail"), ("CIF/CUI", "cif cui"), ("Adresă", "adresa")],
)
def test_header_key(name: str, key: str) -> None:
    """Header names compare without case, accents and punctuation."""
    assert header_key(name) == key


@pytest.mark.parametrize(
    ("first_line", "delimiter"),
    [("a;b;c", ";"), ("a,b,c", ","), ("a\tb\tc", "\t"), ('"a,1";"b,2";c', ";"),
     ("solo", ","), ("\n\na;b", ";")],
)
def test_detect_delimiter(first_line: str, delimiter: str) -> None:
    """The separator is the one the header uses most outside quotes."""
    assert detect_delimiter(first_line + "\n1;2;3\n") == delimiter


def test_windows_1252_punctuation() -> None:
    """Windows-1252 quotes and the euro sign are read as such, not as control codes."""
    text, encoding = decode_table("note\n“Caldaia” 100 € – però\n".encode("cp1252"))
    assert encoding == "cp1252"
    assert "“Caldaia” 100 € – però" in text
