"""Two write units racing on PostgreSQL, made to meet at their critical point.

Each unit runs in a thread on its own connection and transaction, its statements
pipelined as two daemons' writers send them. Before the first statement containing
`pause_before` (the write that follows the lookup deciding it) a unit stops until the
other unit has reached its own such statement too, so both have done their lookups
before either writes: the interleaving that breaks a select-then-insert, every time
rather than by luck. A unit whose lookup decided not to write at all stops before its
commit instead. A unit that is instead waiting on a lock the first holds (the guard
doing its job) cannot reach the point; that counts as arriving, or the two would wait
for each other forever. The wait is read from `pg_stat_activity`, not guessed with a
sleep.

With `ordered=True` the second unit goes on from the point only once the first has
committed: for races whose wrong result depends on which write lands last, so the
test fails the same way every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from nexusmail.storage.pg_pipeline import PipelinedUnit, roll_back_quietly
from nexusmail.storage.postgresql import connect

WAIT_LIMIT_S = 15.0
POLL_S = 0.005


@dataclass
class Outcome:
    """How one unit ended: its value, or what it raised."""

    value: Any = None
    error: BaseException | None = None
    # Whether it waited at the pause point for the other to get there too.
    met_the_other: bool = False


@dataclass
class _Party:
    name: str
    pid: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


class _GatedTx:
    """A writer connection that stops once before the critical statement."""

    dialect = "postgresql"

    def __init__(self, inner: PipelinedUnit, gate: RaceGate, me: _Party, other: _Party,
                 outcome: Outcome) -> None:
        self._inner, self._gate, self._me, self._other = inner, gate, me, other
        self._outcome = outcome

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        self._pause_if_critical(sql)
        return self._inner.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        self._pause_if_critical(sql)
        return self._inner.executemany(sql, parameters)

    def _pause_if_critical(self, sql: str) -> None:
        if self._gate.pause_before in sql:
            self.arrive()

    def arrive(self) -> None:
        """Stop here, the first time, until the other unit gets to its point too."""
        if not self._me.arrived.is_set():
            # Arrived means done with all before: what was sent is answered first (it
            # may wait on the other's lock, and the other then goes on without us).
            self._inner.wait()
            self._me.arrived.set()
            self._outcome.met_the_other = self._gate.wait_for(self._other)
            # Only when both got here: if the first waits on a lock this one holds, the
            # guard has ordered them already.
            if (self._gate.ordered and self._me.name == "second"
                    and self._outcome.met_the_other):
                self._gate.wait_until_finished(self._other)


class RaceGate:
    """Run two units against the database at `url`, meeting before `pause_before`."""

    def __init__(self, url: str, pause_before: str, *, ordered: bool = False) -> None:
        self.url = url
        self.pause_before = pause_before
        self.ordered = ordered

    def run(self, first: Callable[[Any], Any], second: Callable[[Any], Any]
            ) -> tuple[Outcome, Outcome]:
        """Both units at once, each committed (or rolled back on error); their outcomes."""
        parties = (_Party("first"), _Party("second"))
        outcomes = (Outcome(), Outcome())
        threads = [threading.Thread(target=self._unit, args=(fn, parties[n], parties[1 - n],
                                                             outcomes[n]))
                   for n, fn in enumerate((first, second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT_LIMIT_S * 2)
            assert not thread.is_alive(), "a racing unit never finished"
        return outcomes

    def _unit(self, fn: Callable[[Any], Any], me: _Party, other: _Party,
              outcome: Outcome) -> None:
        try:
            with connect(self.url) as conn:
                me.pid = conn.info.backend_pid
                try:
                    # As the store's writer runs a unit: statements pipelined, answered
                    # at the unit's reads and at its end (storage.pg_pipeline).
                    with conn.pipeline() as pipeline:
                        unit = PipelinedUnit(conn, pipeline)
                        gated = _GatedTx(unit, self, me, other, outcome)
                        outcome.value = fn(gated)
                        unit.wait()
                        gated.arrive()  # never got to the write: its commit is the point
                        conn.commit()
                except Exception as exc:  # the race's result, for the test to judge
                    outcome.error = exc
                    roll_back_quietly(conn)
        finally:
            me.finished.set()

    def wait_for(self, other: _Party) -> bool:
        """Until `other` arrives (True), or finishes or waits on a lock (False)."""
        deadline = time.monotonic() + WAIT_LIMIT_S
        with psycopg.connect(self.url, autocommit=True) as monitor:
            while not other.arrived.is_set():
                if other.finished.is_set() or _waits_on_a_lock(monitor, other.pid):
                    return False
                if time.monotonic() > deadline:
                    raise AssertionError(f"the {other.name} unit never reached the gate")
                time.sleep(POLL_S)
        return True

    def wait_until_finished(self, other: _Party) -> None:
        """Until `other` has committed, or waits on a lock (this unit must go on then)."""
        deadline = time.monotonic() + WAIT_LIMIT_S
        with psycopg.connect(self.url, autocommit=True) as monitor:
            while not other.finished.is_set():
                if _waits_on_a_lock(monitor, other.pid):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"the {other.name} unit never finished")
                time.sleep(POLL_S)


# The waits a guard makes: an advisory lock, or another transaction's row. Not the
# short ones any insert may meet (extending a table's file), which order nothing.
GUARD_WAITS = ("advisory", "transactionid", "tuple")


def _waits_on_a_lock(monitor: psycopg.Connection[Any], pid: int) -> bool:
    if not pid:
        return False
    row = monitor.execute("SELECT wait_event_type, wait_event FROM pg_stat_activity"
                          " WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock" and row[1] in GUARD_WAITS
