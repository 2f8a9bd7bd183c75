"""The writer's statements on PostgreSQL sent without waiting for each answer.

A mail's write unit is some twenty statements, most of them INSERTs and UPDATEs whose
outcome the unit never reads. Waiting a round trip to the server for each one was most
of the writer's time on PostgreSQL, and the writer is the one serial part of intake.
In psycopg's pipeline mode a statement is sent and the unit goes on; the writer waits
only when the unit reads a result (a row, a rowcount: everything sent so far is
answered in that one round trip) and once at the unit's end, where RELEASE SAVEPOINT
and the unit's unread statements are answered together.

What a unit may rely on: a statement that fails raises at the unit's next read or at
its end, not where it was sent, and in either case inside the unit, so the unit fails
alone as before. A unit that handles a failure of its own (a unique key turned into
Conflict) therefore reads that statement's result (`RETURNING id` and `fetchone`),
as every such unit does. A unit that sets savepoints of its own (a bulk import that
undoes a refused row and goes on) has its statements answered one by one from its
first savepoint on, so a row's failure is raised inside that row.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg

from nexusmail.storage.postgresql import Row, translate

# A unit's own savepoint statements: from the first one on, statements wait one by one.
_SAVEPOINT_WORDS = ("SAVEPOINT", "ROLLBACK", "RELEASE")


@functools.lru_cache(maxsize=4096)
def _sql(ours: str) -> str:
    return translate(ours)  # our statements are constants: translate each once


@functools.lru_cache(maxsize=4096)
def _sets_savepoints(ours: str) -> bool:
    return ours.lstrip().upper().startswith(_SAVEPOINT_WORDS)


class PendingCursor:
    """A statement's cursor whose answer may still be on its way: reading it waits."""

    def __init__(self, cursor: psycopg.Cursor[Row], unit: PipelinedUnit, number: int) -> None:
        self._cursor = cursor
        self._unit = unit
        self._number = number

    @property
    def rowcount(self) -> int:
        self._unit.wait_for(self._number)
        return self._cursor.rowcount

    def fetchone(self) -> Row | None:
        self._unit.wait_for(self._number)
        return self._cursor.fetchone()

    def fetchall(self) -> list[Row]:
        self._unit.wait_for(self._number)
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Row]:
        self._unit.wait_for(self._number)
        return iter(self._cursor)


class PipelinedUnit:
    """What one write unit gets on PostgreSQL inside the writer's pipeline:
    sqlite3.Connection's execute/executemany, answered lazily."""

    dialect = "postgresql"  # for the few statements that differ by store

    def __init__(self, conn: psycopg.Connection[Row], pipeline: psycopg.Pipeline) -> None:
        self._conn = conn
        self._pipeline = pipeline
        self._sent = 0  # statements sent in this unit
        self._answered = 0  # of which the answers have been read
        self._one_by_one = False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PendingCursor:
        return self._send(sql, lambda: self._conn.execute(_sql(sql), parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> PendingCursor:
        def run() -> psycopg.Cursor[Row]:
            cursor = self._conn.cursor()
            cursor.executemany(_sql(sql), parameters)
            return cursor
        return self._send(sql, run)

    def _send(self, sql: str, run: Any) -> PendingCursor:
        if _sets_savepoints(sql):
            self._one_by_one = True
        try:
            cursor: psycopg.Cursor[Row] = run()
        except psycopg.Error:
            # An earlier statement's failure came back while this one was sent: the
            # server skips what follows it until the next sync, so sync before going on.
            self.drain()
            raise
        self._sent += 1
        number = self._sent
        if self._one_by_one:
            self.wait_for(number)
        return PendingCursor(cursor, self, number)

    def wait_for(self, number: int) -> None:
        """Wait until statement `number` is answered; raise the first failure among the
        statements sent until now."""
        if number > self._answered:
            self.wait()

    def wait(self) -> None:
        """One round trip: everything sent is answered; the first failure is raised."""
        sent = self._sent
        try:
            self._pipeline.sync()
        finally:
            self._answered = sent  # a failed sync still reads every answer up to it

    def drain(self) -> psycopg.Error | None:
        """Like `wait`, but the first failure is returned rather than raised."""
        try:
            self.wait()
        except psycopg.Error as exc:
            return exc
        return None

    def send_quietly(self, sql: str) -> None:
        """Send a statement of the writer's own (its savepoints): answered later. Never
        prepared: it often follows a failed statement, and the server skips it."""
        self._conn.execute(sql, prepare=False)
        self._sent += 1


def roll_back_quietly(conn: psycopg.Connection[Any]) -> None:
    """End a group's transaction that failed half-way, if the connection still works."""
    if conn.broken or conn.closed:
        return
    with contextlib.suppress(psycopg.Error):
        conn.rollback()  # out of the pipeline: it syncs first, then ROLLBACK
