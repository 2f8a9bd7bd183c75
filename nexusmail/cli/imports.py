"""`nexusmail import customers FILE` and `nexusmail import equipment FILE`: the firm's
spreadsheet exports (CSV) brought into the archive, again and again without duplicates.

The file is read whole (a 10,000-row export is a few MB) and checked row by row first;
the good rows are then written in batches, each batch one transaction of the store's
writer, so a running daemon keeps taking mail between them. Bad rows are reported with
their line numbers and make the exit status non-zero; the good ones are still imported,
unless --dry-run, which writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from nexusmail.cli.csv_table import UNKNOWN_ENCODING, Table, TableError, read_table
from nexusmail.cli.language import say, speech, text
from nexusmail.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    AddCommand,
    fail,
    with_store,
)
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.i18n import Msg, message_of, msg
from nexusmail.ingest.mbox_import import ProgressBar
from nexusmail.records.bulk_import import ImportCounts, import_customers, import_equipment
from nexusmail.records.import_rows import (
    CUSTOMER_COLUMNS,
    EQUIPMENT_COLUMNS,
    CustomerRow,
    EquipmentRow,
    RowRefused,
    customer_row,
    equipment_row,
    missing_customer_columns,
    missing_equipment_columns,
)
from nexusmail.storage.connections import Storage, WriteTx
from nexusmail.tickets.mail_domains import free_mail_with

R = TypeVar("R", CustomerRow, EquipmentRow)
# Rows per writer transaction: big enough that commits cost little, small enough that
# a daemon's mail waits a fraction of a second behind one.
BATCH_ROWS = 500
# Larger files are not spreadsheet exports of an archive (and would be held in memory).
MAX_FILE_BYTES = 200 * 1024 * 1024
# Bad lines printed; the count says how many more there were.
MAX_ERRORS_SHOWN = 200

_HEADER_HELP = (
    "The first line names the columns: the API's field names or their Italian and "
    "Romanian names (compared without case, accents or punctuation); other columns are "
    "reported and ignored. UTF-8 (with or without BOM) or Windows-1252/1250, fields "
    "separated by ';' or ',' (found from the header). Empty cells leave stored values "
    "as they are. Exit status 1 when a line is refused (each printed with its line "
    "number; the good lines are imported all the same), 2 when the file cannot be used.")


def register(importer: Any, add: AddCommand) -> None:
    """Add `customers` and `equipment` to the `import` command group."""
    cust = add(importer, "customers", cmd_import_customers,
               "Import customers from a CSV file; found again by tax_id, else email. "
               "Columns: name, tax_id (partita iva, p.iva, codice fiscale, cif, cui), "
               "address (indirizzo, adresa), phone (telefono, telefon), work_phone, email, "
               "language (en|it|ro), notes (note), mail_domains (domini, domenii; "
               "separated by spaces or '|'). " + _HEADER_HELP,
               "  nexusmail import customers clienti.csv --dry-run\n"
               "  nexusmail import customers clienti.csv")
    equip = add(importer, "equipment", cmd_import_equipment,
                "Import the installed base from a CSV file; a machine is found again by "
                "its serial within its customer. Columns: customer_tax_id (partita iva "
                "cliente, cui client) or customer_id, site (sede, locatie: a site name of "
                "that customer, created when new), serial (matricola, numar serie), model "
                "(modello), description, installed_on, warranty_until (2024-03-31 or "
                "31/03/2024), notes. " + _HEADER_HELP,
                "  nexusmail import equipment parco-installato.csv --dry-run\n"
                "  nexusmail import equipment matricole.csv")
    for parser in (cust, equip):
        parser.add_argument("file", type=Path, help="the CSV file")
        parser.add_argument("--dry-run", action="store_true",
                            help="check every line and count what would change; write nothing")


def cmd_import_customers(args: argparse.Namespace, settings: Settings) -> int:
    free_mail = free_mail_with(settings.customers.free_mail_domains)
    owner = settings.customers.default_owner or None
    return _run_import(
        args, settings, kind="customers", columns=CUSTOMER_COLUMNS,
        missing=missing_customer_columns,
        make_row=lambda line, values: customer_row(line, values, free_mail),
        write=lambda tx, rows, now: import_customers(tx, rows, now=now, default_owner=owner,
                                                     dry_run=args.dry_run))


def cmd_import_equipment(args: argparse.Namespace, settings: Settings) -> int:
    return _run_import(
        args, settings, kind="equipment", columns=EQUIPMENT_COLUMNS,
        missing=missing_equipment_columns, make_row=equipment_row,
        write=lambda tx, rows, now: import_equipment(tx, rows, now=now,
                                                     dry_run=args.dry_run))


def _run_import(args: argparse.Namespace, settings: Settings, *, kind: str,
                columns: Mapping[str, tuple[str, ...]],
                missing: Callable[[tuple[str, ...]], list[str]],
                make_row: Callable[[int, Mapping[str, str]], R],
                write: Callable[[Any, Sequence[R], Any], ImportCounts]) -> int:
    path: Path = args.file
    table = _read(path, columns)
    if isinstance(table, int):
        return table
    absent = missing(table.fields)
    if absent:
        return fail(msg("{path}: the header names no column for {missing} (it has: {found})",
                        path=str(path), missing=", ".join(absent),
                        found=", ".join(table.fields) or msg("nothing we know")), EXIT_USAGE)
    if table.unknown_columns:
        say(msg("{path}: columns ignored (not known): {columns}", path=str(path),
                columns=", ".join(table.unknown_columns)), file=sys.stderr)
    rows: list[R] = []
    errors: list[tuple[int, str | Msg]] = [(e.line, e.message) for e in table.errors]
    for raw in table.rows:
        try:
            rows.append(make_row(raw.line, raw.values))
        except RowRefused as exc:
            errors.append((raw.line, message_of(exc)))
    counts = _write(settings, rows, write, dry_run=args.dry_run)
    errors += counts.errors
    errors.sort(key=lambda error: error[0])
    for line, reason in errors[:MAX_ERRORS_SHOWN]:
        say(msg("{path}: line {line}: {reason}", path=str(path), line=line, reason=reason),
            file=sys.stderr)
    if len(errors) > MAX_ERRORS_SHOWN:
        say(msg("{path}: ... and {count} more lines refused", path=str(path),
                count=speech().number(len(errors) - MAX_ERRORS_SHOWN)), file=sys.stderr)
    say(_summary(path, table, kind, counts, refused=len(errors), dry_run=args.dry_run))
    return EXIT_FAILED if errors else EXIT_OK


def _summary(path: Path, table: Table, kind: str, counts: ImportCounts, *, refused: int,
             dry_run: bool) -> Msg:
    number = speech().number
    encoding = (text(msg("unknown 8-bit (undecodable bytes replaced)"))
                if table.encoding == UNKNOWN_ENCODING else table.encoding)
    values = {"path": str(path), "encoding": encoding, "delimiter": table.delimiter,
              "kind": text(msg("customers")) if kind == "customers" else text(msg("equipment")),
              "created": number(counts.created), "updated": number(counts.updated),
              "unchanged": number(counts.unchanged), "refused": number(refused)}
    if dry_run:
        return msg("{path} ({encoding}, '{delimiter}'): {kind}: {created} would be created, "
                   "{updated} updated, {unchanged} unchanged; {refused} lines refused. Dry "
                   "run: nothing was written.", **values)
    return msg("{path} ({encoding}, '{delimiter}'): {kind}: {created} were created, "
               "{updated} updated, {unchanged} unchanged; {refused} lines refused.", **values)


def _read(path: Path, columns: Mapping[str, tuple[str, ...]]) -> Table | int:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return fail(msg("{path}: larger than {size} MB; split it", path=str(path),
                            size=MAX_FILE_BYTES // 2**20), EXIT_USAGE)
        data = path.read_bytes()
    except OSError as exc:
        return fail(msg("{path}: cannot read it: {problem}", path=str(path),
                        problem=exc.strerror), EXIT_USAGE)
    try:
        return read_table(data, columns)
    except TableError as exc:
        return fail(msg("{path}: {problem}", path=str(path), problem=message_of(exc)),
                    EXIT_USAGE)


def _batch_writer(write: Callable[[Any, Sequence[R], Any], ImportCounts], batch: Sequence[R],
                  now: datetime) -> Callable[[WriteTx], ImportCounts]:
    def unit(tx: WriteTx) -> ImportCounts:
        return write(tx, batch, now)
    return unit


def _write(settings: Settings, rows: Sequence[R],
           write: Callable[[Any, Sequence[R], Any], ImportCounts], *,
           dry_run: bool) -> ImportCounts:
    progress = ProgressBar(len(rows), label=text(msg("row")), words=text)
    clock = SystemClock()
    # A dry run is one transaction, undone at its end: a later row sees what an earlier
    # one would have created, as in the real import.
    size = max(len(rows), 1) if dry_run else BATCH_ROWS

    async def run(store: Storage) -> ImportCounts:
        total = ImportCounts()
        for start in range(0, len(rows), size):
            batch = rows[start:start + size]
            total.add(await store.write(_batch_writer(write, batch, clock.now())))
            progress.advance(len(batch))
        progress.finish()
        return total

    return with_store(settings, run)
