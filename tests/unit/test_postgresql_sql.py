"""Our SQL as psycopg wants it: placeholders translated, literal percent signs kept."""

from __future__ import annotations

import time

import pytest

from nexusmail.storage.postgresql import Row, translate


@pytest.mark.parametrize(("ours", "theirs"), [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT '?' , ? ", "SELECT '?' , %s "),
    ("SELECT 'it''s ? 100%' WHERE x LIKE ?", "SELECT 'it''s ? 100%%' WHERE x LIKE %s"),
    ('SELECT "odd?name" FROM t WHERE v % 2 = ?', 'SELECT "odd?name" FROM t WHERE v %% 2 = %s'),
    ("", ""),
])
def test_translate_placeholders_outside_quotes(ours: str, theirs: str) -> None:
    """`?` outside quotes becomes `%s`; `?` inside literals stays; `%` is doubled."""
    assert translate(ours) == theirs


def test_translate_is_linear() -> None:
    """Ten times the SQL takes at most about ten times as long (best of five)."""
    def best(sql: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            translate(sql)
            times.append(time.perf_counter() - started)
        return min(times)

    unit = "SELECT a, 'x?y' FROM t WHERE b = ? AND c LIKE '%z' "
    assert best(unit * 20_000) < 30 * best(unit * 2_000)


def test_row_reads_by_position_and_by_name() -> None:
    """A Row answers row[0] and row["name"], unpacks, and lists its keys."""
    row = Row((7, "open"), {"number": 0, "status": 1})
    assert (row[0], row["status"]) == (7, "open")
    number, status = row
    assert (number, status) == (7, "open")
    assert row.keys() == ["number", "status"]
    assert tuple(row) == (7, "open")
