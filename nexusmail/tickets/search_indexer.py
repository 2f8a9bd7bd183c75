"""The search indexer: PostgreSQL's message search vectors, made after the commit.

On PostgreSQL a new message is only noted in `message_search_backlog` by a trigger
(migration 0032 says why: the vectors inside the INSERT held up the store's one
writer). This task turns the backlog into `message_search` rows, a batch per
statement, on a reader's connection, so the writer never waits for it:
- when ingest has been quiet for a poll (no mail being accepted now, none accepted
  since the last poll `POLL_S` ago: a pause between two mails of a burst is not
  quiet);
- while mail keeps coming, at least every `MAX_DELAY_S`, so a long stream of mail
  does not leave the backlog to grow (search reads the backlog's messages by their
  text, which costs it more the longer the backlog is).
Several daemons each run it: `FOR UPDATE SKIP LOCKED` gives each backlog row to one
of them. On SQLite there is nothing to do (FTS5's trigger costs the writer little).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import structlog

from nexusmail.clock import Clock
from nexusmail.storage.connections import ReadTx, Storage
from nexusmail.tickets.store import StorageError

log = structlog.get_logger(__name__)

POLL_S = 1.0
MAX_DELAY_S = 30.0
# Messages indexed per statement: ~0.15 s of the database server for 5 KB mails; a stop
# waits for one batch at most.
BATCH = 200

# A message's search vector, from its row aliased `m`: what the indexer stores, what
# search computes for a message still in the backlog, what a store move rebuilds.
MESSAGE_VECTOR_SQL = "nexusmail_search_vector(m.subject || ' ' || m.body_text)"

# One statement, atomic on its own (the reader's connection is in autocommit): the
# batch leaves the backlog and gets its vectors together, or neither happens. A backlog
# row whose message is gone (deleted since) is simply dropped.
INDEX_BATCH_SQL = (
    "WITH batch AS (DELETE FROM message_search_backlog WHERE message_id IN ("  # noqa: S608 (a constant)
    " SELECT message_id FROM message_search_backlog ORDER BY message_id LIMIT ?"
    " FOR UPDATE SKIP LOCKED) RETURNING message_id),"
    " indexed AS (INSERT INTO message_search (message_id, search_vector)"
    f" SELECT m.id, {MESSAGE_VECTOR_SQL}"
    " FROM messages m JOIN batch ON batch.message_id = m.id WHERE m.direction <> 'out'"
    " ON CONFLICT (message_id) DO UPDATE SET search_vector = EXCLUDED.search_vector"
    " RETURNING 1)"
    " SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM indexed)")


async def index_batch(conn: ReadTx, limit: int = BATCH) -> tuple[int, int]:
    """Index up to `limit` backlog messages: (backlog rows taken, messages indexed)."""
    cursor = await conn.execute(INDEX_BATCH_SQL, (limit,))
    row = await cursor.fetchone()
    return int(row[0]), int(row[1])


class IngestActivity(Protocol):
    """What the indexer reads of ingest (ingest.accept.Ingest)."""

    idle: asyncio.Event       # set while no mail is being accepted
    accepted: int             # mails accepted since start


class SearchIndexer:
    """Empties the message search backlog when ingest lets it (module docstring)."""

    def __init__(self, store: Storage, clock: Clock, *,
                 ingest: IngestActivity | None = None) -> None:
        self.store = store
        self.clock = clock
        self.ingest = ingest
        self.indexed = 0  # messages indexed since start (tests and benchmarks read it)
        self._last_drained = clock.monotonic()
        self._accepted_at_poll = ingest.accepted if ingest is not None else 0

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; index once ingest is quiet or the delay is up."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=POLL_S)
            quiet = self._quiet_since_last_poll()
            if stop.is_set() or not (quiet or self._overdue()):
                continue
            try:
                await self.drain(stop)
            except StorageError as exc:  # the database is away: the backlog waits for it
                log.warning("search.index_failed", error=str(exc))
            except Exception:  # the loop boundary: log, keep the task alive, retry later
                log.exception("search.index_failed")

    async def drain(self, stop: asyncio.Event | None = None) -> int:
        """Index batches until the backlog is empty, or until ingest gets busy again
        while the delay is not up; the messages indexed."""
        indexed = 0
        while stop is None or not stop.is_set():
            async with self.store.read() as conn:
                taken, done = await index_batch(conn)
            indexed += done
            if taken < BATCH:
                self._last_drained = self.clock.monotonic()
                break
            if not (self._idle() or self._overdue()):
                break
        self.indexed += indexed
        if indexed:
            log.debug("search.indexed", messages=indexed)
        return indexed

    def _quiet_since_last_poll(self) -> bool:
        """Idle now, and no mail accepted since the last poll."""
        if self.ingest is None:
            return True
        accepted, before = self.ingest.accepted, self._accepted_at_poll
        self._accepted_at_poll = accepted
        return self.ingest.idle.is_set() and accepted == before

    def _idle(self) -> bool:
        return self.ingest is None or self.ingest.idle.is_set()

    def _overdue(self) -> bool:
        return self.clock.monotonic() - self._last_drained >= MAX_DELAY_S
