"""Timesheets as CSV that a spreadsheet opens right, in Italy and Romania too.

Excel reads a file as UTF-8 only when it starts with a byte order mark, and where the
comma is the decimal mark (Italy, Romania) it expects ";" between columns: the
delimiter is `[export] csv_delimiter` (";" by default), and with ";" hours are written
with a decimal comma. Hours have four decimals (20 minutes is 0,3333); the exact
minutes are in their own columns for whoever sums them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from starlette.responses import Response

from nexusmail.tickets.activity_queries import TimesheetRow

COLUMNS = ("date", "employee_email", "customer", "intervention", "subject", "kind",
           "hours", "travel_hours", "work_minutes", "travel_minutes", "text", "activity_id")
_BOM = "\ufeff"
# A cell starting with one of these is run as a formula by spreadsheets (CSV injection):
# such text is written with a leading apostrophe.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def timesheet_csv(rows: Sequence[TimesheetRow], *, delimiter: str) -> Response:
    """The rows as a CSV download (UTF-8 with BOM)."""
    out = io.StringIO()
    out.write(_BOM)
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    decimal_comma = delimiter != ","
    for row in rows:
        work = _minutes(row["hours"])
        travel = _minutes(row["travel_hours"])
        writer.writerow([
            row["date"], row["employee_email"], _cell(row["customer_name"]),
            row["intervention_number"], _cell(row["subject"]), row["kind"],
            _hours(work, decimal_comma), _hours(travel, decimal_comma),
            "" if work is None else work, "" if travel is None else travel,
            _cell(row["text"]), row["id"],
        ])
    return Response(out.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="activities.csv"'})


def _minutes(hours: float | None) -> int | None:
    return None if hours is None else round(hours * 60)


def _hours(minutes: int | None, decimal_comma: bool) -> str:
    if minutes is None:
        return ""
    text = f"{minutes / 60:.4f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if decimal_comma else text


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
