"""Read a spreadsheet export (CSV) the way Italian and Romanian Excel write it.

Excel writes UTF-8 with a byte-order mark ("CSV UTF-8") or the Windows code page of the
machine (Windows-1252 in Italy, Windows-1250 in Romania), and separates fields with ";"
where the decimal comma is local (Italy, Romania) and "," elsewhere. So: the encoding
is read from the BOM, else UTF-8 when the bytes are UTF-8, else guessed among the
Windows code pages; the separator is the one the header line uses most.

The header row names the columns; each name is matched, without regard to case,
accents or punctuation, to a field by its aliases ("P.IVA", "Partita IVA" and
"tax_id" all mean tax_id). Columns that name no field are reported and ignored. Each
record keeps the file line it starts on, for the error report.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nexusmail.i18n import Msg, msg
from nexusmail.ingest.charsets import decode_bytes

# A field larger than this is a broken quote or not a spreadsheet (csv's own default).
MAX_FIELD_CHARS = 131_072
_DELIMITERS = (";", "\t", ",")  # ties go to the first: ";" is what our users' Excel writes
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_CODE_PAGES = ("cp1252", "cp1250", "iso8859-2")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")
# The encoding named when no code page reads the bytes.
UNKNOWN_ENCODING = "unknown 8-bit (undecodable bytes replaced)"


class TableError(Exception):
    """The file cannot be read as a table at all (no header, unreadable bytes)."""


@dataclass(frozen=True)
class Row:
    line: int  # the file line the record starts on (a quoted field may span lines)
    values: Mapping[str, str]  # field name -> value, stripped; only fields in the header


@dataclass(frozen=True)
class LineError:
    line: int
    message: Msg

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class Table:
    encoding: str
    delimiter: str
    fields: tuple[str, ...]  # the fields the header names, in file order
    unknown_columns: tuple[str, ...]  # header names that name no field
    rows: list[Row] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)


def header_key(name: str) -> str:
    """The form header names are compared in: "Număr serie" -> "numar serie",
    "P.IVA" -> "p iva", "tax_id" -> "tax id"."""
    plain = "".join(ch for ch in unicodedata.normalize("NFKD", name.casefold())
                    if not unicodedata.combining(ch))
    return _NOT_ALNUM.sub(" ", plain).strip()


def decode_table(data: bytes) -> tuple[str, str]:
    """The file's text and the name of the encoding it was read in."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise TableError(msg("the file starts like {codec} but is not: {problem}",
                                     codec=codec, problem=str(exc))) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    text = decode_bytes(data, None)
    for codec in _CODE_PAGES:
        if data.decode(codec, errors="replace") == text:
            return text, codec
    return text, UNKNOWN_ENCODING


def detect_delimiter(text: str) -> str:
    """The separator the first line uses most, quoted parts left out."""
    first_line = _first_line(text)
    unquoted = "".join(first_line.split('"')[::2])
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line
    return ""


def read_table(data: bytes, aliases: Mapping[str, tuple[str, ...]]) -> Table:
    """Read `data` as a table whose header names fields by `aliases` (field -> names it
    may go by; the field's own name always works). TableError when there is no header."""
    text, encoding = decode_table(data)
    delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header, header_line = _read_header(reader)
    by_key = {header_key(name): name for name in aliases}
    for name, names in aliases.items():
        by_key.update({header_key(alias): name for alias in names})
    columns: list[str | None] = []
    unknown: list[str] = []
    for title in header:
        columns.append(by_key.get(header_key(title)))
        if columns[-1] is None and title.strip():
            unknown.append(title.strip())
    fields = tuple(dict.fromkeys(c for c in columns if c is not None))
    table = Table(encoding, delimiter, fields, tuple(unknown))
    _read_records(reader, columns, header_line, table)
    return table


def _read_header(reader: Any) -> tuple[list[str], int]:
    while True:
        try:
            record = next(reader)
        except StopIteration:
            raise TableError(msg("the file is empty: the first line must name the columns")
                             ) from None
        except csv.Error as exc:
            raise TableError(msg("line {line}: the header cannot be read ({problem})",
                                 line=reader.line_num, problem=str(exc))) from None
        if any(cell.strip() for cell in record):
            return record, reader.line_num


def _read_records(reader: Any, columns: list[str | None], last_line: int,
                  table: Table) -> None:
    width = len(columns)
    while True:
        start = last_line + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            table.errors.append(LineError(start, _csv_problem(str(exc))))
            last_line = reader.line_num
            continue
        last_line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > width and any(cell.strip() for cell in record[width:]):
            table.errors.append(LineError(
                start, msg("{count} fields, the header names {width} (a separator in a value"
                           " that is not in quotes?)", count=len(record), width=width)))
            continue
        if len(record) < width:
            table.errors.append(LineError(
                start, msg("{count} fields, the header names {width}", count=len(record),
                           width=width)))
            continue
        values: dict[str, str] = {}
        for name, cell in zip(columns, record, strict=False):
            # Two columns may name one field (P.IVA and codice fiscale): the first one
            # with a value wins.
            if name is not None and not values.get(name):
                values[name] = cell.strip()
        table.rows.append(Row(start, values))


def _csv_problem(message: str) -> Msg:
    if "unexpected end of data" in message:
        return msg("a quote opened on this line is never closed (the rest of the file is one"
                   " value)")
    if "field larger than field limit" in message:
        return msg("a value longer than {count} characters (a quote never closed?)",
                   count=MAX_FIELD_CHARS)
    return msg("not valid CSV: {problem}", problem=message)
