""""Now" for rows several daemons compare: the database's clock on PostgreSQL.

Leases and heartbeats are written by one daemon and judged by another; if each used its
own clock, a daemon whose clock runs ahead would take over leases that have not run
out. On PostgreSQL the server's clock is the one clock they share. On SQLite there is
one daemon per store, and the injected clock keeps tests in charge of time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from nexusmail.clock import iso
from nexusmail.storage.connections import dialect_of

# The server's transaction time in the store's text form of a timestamp (clock.iso):
# second precision, UTC, "+00:00"; `?` is a number of seconds to add.
_PG_NOW_PLUS = ("(to_char((now() + ? * interval '1 second') AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00')")


def now_plus(conn: object, clock_now: datetime, seconds: float = 0.0
             ) -> tuple[str, tuple[Any, ...]]:
    """An SQL expression for the shared "now" plus `seconds`, and its parameters."""
    if dialect_of(conn) == "postgresql":
        return _PG_NOW_PLUS, (seconds,)
    return "?", (iso(clock_now + timedelta(seconds=seconds)),)
