"""The outbox worker: the only part that talks to the relay (DESIGN invariant 3).

It picks pending rows that are due, composes each (jinja2), hands it to the
transport and records the outcome in one write: `sent`, a later retry with
exponential backoff and jitter, or `failed` (permanent refusal, template error,
attempts used up). When the relay itself is unreachable (RelayUnavailableError), the
worker also pauses all sending until that row's retry time, so a dead relay costs one
connection attempt per backoff step, not one per queued row.

Incoming mail first. While mail is being accepted (the ingest's idle event is clear),
a due row waits until ingest goes quiet, but never longer than `[outbound]
yield_to_ingest_s` after it became due: the senders of a burst wait on our 250 while
their acknowledgements can follow seconds later, and a steady stream of mail cannot
starve the outbox (the oldest rows go out first, at most that late).

Crash semantics. The relay's acceptance and our "sent" mark are two systems, so the
mail is delivered at least once, never at most once: a crash (or a cancelled task at
shutdown) after the relay accepted but before the mark is committed leaves the row
pending, and it is sent again with the same Message-ID, fixed at enqueue. Receivers
and our own tests dedupe by Message-ID; our ingest sees the own-mail header on any
copy that comes back. Rows are never deleted: sent and failed rows are the record of
what left (and what did not), shown on the intervention's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from nexusmail.clock import Clock, iso
from nexusmail.config import OutboundSettings
from nexusmail.dispatch.compose import ComposedMail, ComposeError, Composer, OutboxRow
from nexusmail.dispatch.transport import (
    PermanentSendError,
    RelayUnavailableError,
    TransientSendError,
    Transport,
)
from nexusmail.service.metrics import Metrics
from nexusmail.storage.connections import DbRow, WriteTx
from nexusmail.tickets.store import Store

log = structlog.get_logger(__name__)

JITTER = 0.2  # ±20%: rows that failed together do not all come back together
MAX_ERROR_CHARS = 1000
# Sent rows are marked in one write per this many rows tried.
MARK_BATCH = 16


@dataclass(frozen=True)
class _Sent:
    row: OutboxRow
    composed: ComposedMail
    log: Any  # the row's bound logger


class OutboxWorker:
    """Sends due outbox rows; `run` loops until its stop event is set.

    Built by the daemon once, e.g.::

        composer = Composer(s.mail, blob_loader=BlobStore(blobs_path(s)).get, clock=clock)
        worker = OutboxWorker(store, build_transport(s.outbound, s.storage.data_dir),
                              composer, clock, s.outbound,
                              envelope_sender=s.mail.support_addresses[0])
        task = asyncio.create_task(worker.run(stop))
        ...  # after a commit that enqueued mail: worker.notify() (on the loop's thread)
        await task                      # returns soon after `stop` is set
        await worker.transport.close()  # QUIT on kept relay connections
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        composer: Composer,
        clock: Clock,
        outbound: OutboundSettings,
        envelope_sender: str,
        *,
        concurrency: int = 4,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.transport = transport
        self.composer = composer
        self.clock = clock
        self.outbound = outbound
        self.envelope_sender = envelope_sender
        self.concurrency = max(1, concurrency)
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()  # one pass at a time: a row is never sent twice at once
        self.relay_paused_until: datetime | None = None
        self.ingest_idle: asyncio.Event | None = None  # see yield_to_ingest
        # When the earliest row held back for ingest may go regardless (None: none held).
        self.held_until: datetime | None = None

    def yield_to_ingest(self, idle: asyncio.Event) -> None:
        """Hold due rows back while `idle` is clear (mail being accepted), each at most
        `yield_to_ingest_s` (module docstring)."""
        self.ingest_idle = idle

    def notify(self) -> None:
        """Something was enqueued: send it now rather than after the poll interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, batch: int = 100) -> None:
        """Send what is due, wait for a wake-up, the stop event or the poll interval;
        repeat until `stop` is set. A failing pass is logged and the loop goes on."""
        log.info("outbox.started", poll_interval_s=self.outbound.poll_interval_s)
        stop_watch = asyncio.create_task(self._wake_on(stop))
        try:
            while not stop.is_set():
                self._wake.clear()  # wake-ups from here on ask for another pass
                handled = 0
                try:
                    handled = await self.send_due(batch)
                except Exception:  # the loop boundary: log, wait, try again
                    log.exception("outbox.pass_failed")
                if stop.is_set():
                    break
                if handled >= batch:
                    continue  # a full batch: more may be due already
                if self.held_until is not None:
                    await self._wait_out_hold(stop)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.outbound.poll_interval_s)
        finally:
            stop_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stop_watch
            log.info("outbox.stopped")

    async def _wait_out_hold(self, stop: asyncio.Event) -> None:
        """Until ingest goes quiet, the hold ends or `stop`; each new row's wake-up is
        ignored meanwhile (it would only find itself held too). Capped by the poll
        interval, so a clock that jumps (or a test's fake one) is noticed."""
        if self.held_until is None or self.ingest_idle is None:
            return
        left_s = (self.held_until - self.clock.now()).total_seconds()
        waits = {asyncio.ensure_future(self.ingest_idle.wait()),
                 asyncio.ensure_future(stop.wait())}
        try:
            await asyncio.wait(waits, timeout=max(0.0, min(left_s, self.outbound.poll_interval_s)),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def send_due(self, limit: int = 100) -> int:
        """Try every pending row due by now (at most `limit`); return how many were
        tried (sent, rescheduled or failed). While the relay is paused, nothing is tried."""
        async with self._pass_lock:
            now = self.clock.now()
            self.held_until = None
            if self._relay_paused(now):
                return 0
            async with self.store.read() as conn:
                rows = list(await conn.execute_fetchall(
                    f"SELECT {OutboxRow.COLUMNS}, next_attempt_at"  # noqa: S608 (constant)
                    " FROM outbox"
                    " WHERE status = 'pending' AND next_attempt_at <= ?"
                    " ORDER BY next_attempt_at, id LIMIT ?",
                    (iso(now), limit),
                ))
            if not rows:
                return 0
            slots = asyncio.Semaphore(self.concurrency)

            async def bounded(raw: DbRow) -> _Sent | bool:
                async with slots:
                    now = self.clock.now()
                    if self._relay_paused(now):
                        return False  # the relay went down during this pass: leave it
                    if self._held_for_ingest(raw, now):
                        return False
                    return await self._process(raw) or True

            tried = 0
            failure: BaseException | None = None
            for start in range(0, len(rows), MARK_BATCH):
                results = await asyncio.gather(
                    *(bounded(raw) for raw in rows[start:start + MARK_BATCH]),
                    return_exceptions=True,
                )
                await self._mark_sent([r for r in results if isinstance(r, _Sent)])
                tried += sum(1 for r in results if r is True or isinstance(r, _Sent))
                failure = failure or next(
                    (r for r in results if isinstance(r, BaseException)), None)
            # Every row got its turn; now let an unexpected failure reach the loop.
            if failure is not None:
                raise failure
            return tried

    def _held_for_ingest(self, raw: DbRow, now: datetime) -> bool:
        """Whether this row waits for ingest to go quiet; notes when it may go anyway."""
        hold_s = self.outbound.yield_to_ingest_s
        if self.ingest_idle is None or self.ingest_idle.is_set() or hold_s <= 0:
            return False
        due = datetime.fromisoformat(str(raw["next_attempt_at"]))
        may_go_at = due + timedelta(seconds=hold_s)
        if now >= may_go_at:
            return False
        if self.held_until is None or may_go_at < self.held_until:
            self.held_until = may_go_at
        return True

    def _relay_paused(self, now: datetime) -> bool:
        return self.relay_paused_until is not None and now < self.relay_paused_until

    async def _process(self, raw: DbRow) -> _Sent | None:
        """Compose and send one row; a sent one is returned for marking with its batch,
        any other outcome is written here."""
        try:
            row = OutboxRow.from_db(raw)
        except ComposeError as exc:
            await self._give_up_raw(int(raw["id"]), str(exc))
            return None
        bound = log.bind(
            message_id=row.message_id,
            intervention=row.intervention_number,
            recipient=row.recipient,
            kind=row.kind,
            attempt=row.attempts + 1,
        )
        try:
            # Template files and attachment blobs are read from disk: off the event loop.
            composed = await asyncio.to_thread(self.composer.compose, row)
        except ComposeError as exc:
            await self._mark_failed(row, None, str(exc))
            self._count("compose")
            bound.error("outbox.failed", reason="compose", error=str(exc))
            return None
        try:
            await self.transport.send(
                composed.message, sender=self.envelope_sender, recipients=[row.recipient]
            )
        except PermanentSendError as exc:
            await self._mark_failed(row, composed, str(exc))
            self._count("refused")
            bound.error("outbox.failed", reason="refused", error=str(exc), code=exc.code)
            return None
        except TransientSendError as exc:
            attempts = row.attempts + 1
            if attempts >= self.outbound.max_attempts:
                await self._mark_failed(row, composed, f"gave up after {attempts} attempts: {exc}")
                self._count("attempts")
                bound.error("outbox.failed", reason="attempts", error=str(exc), code=exc.code)
                return None
            now = self.clock.now()
            # Whole seconds, as the store keeps it: the pause and the row agree.
            retry_at = (now + self.backoff(row.attempts)).replace(microsecond=0)
            if isinstance(exc, RelayUnavailableError):
                self._pause_relay(now, retry_at)
            await self._mark_retry(row, retry_at, str(exc))
            self._count("retry")
            bound.warning("outbox.retry", error=str(exc), code=exc.code, retry_at=iso(retry_at))
            return None
        self.relay_paused_until = None
        return _Sent(row, composed, bound)

    def _count(self, result: str) -> None:
        """After the outcome's commit: `sent`, `retry`, or why the mail failed for good."""
        if self.metrics is not None:
            self.metrics.outbox_result(result)

    def _pause_relay(self, now: datetime, until: datetime) -> None:
        # Several rows failing in one pass: the earliest retry ends the pause.
        if self._relay_paused(now) and self.relay_paused_until is not None:
            until = min(until, self.relay_paused_until)
        else:
            log.warning("outbox.relay_paused", until=iso(until))
        self.relay_paused_until = until

    def backoff(self, attempts_before: int) -> timedelta:
        """Delay before the next try: base·2^attempts, capped, then ±20% jitter."""
        o = self.outbound
        base = min(o.retry_base_s * 2 ** min(attempts_before, 60), o.retry_max_s)
        return timedelta(seconds=base * self._rng.uniform(1 - JITTER, 1 + JITTER))

    # -- writes: each outcome is one store.write, the thread message included -----------

    async def _mark_sent(self, sent: list[_Sent]) -> None:
        """One write for a batch of sent rows (one commit instead of one each; a crash
        before it resends the batch, under the same Message-IDs: at-least-once)."""
        if not sent:
            return
        sent_at = iso(self.clock.now())

        def mark(tx: WriteTx) -> None:
            for item in sent:
                tx.execute(
                    "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
                    " last_error = '' WHERE id = ?",
                    (sent_at, item.row.id),
                )
                _fill_thread_message(tx, item.row, item.composed, delivery="sent", error="")

        await self.store.write(mark)
        for item in sent:
            self._count("sent")
            item.log.info("outbox.sent", subject=item.composed.subject)

    async def _mark_retry(self, row: OutboxRow, retry_at: datetime, error: str) -> None:
        def mark(tx: WriteTx) -> None:
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                " WHERE id = ? AND status = 'pending'",
                (iso(retry_at), error[:MAX_ERROR_CHARS], row.id),
            )

        await self.store.write(mark)

    async def _mark_failed(
        self, row: OutboxRow, composed: ComposedMail | None, error: str
    ) -> None:
        def mark(tx: WriteTx) -> None:
            tx.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (error[:MAX_ERROR_CHARS], row.id),
            )
            _fill_thread_message(tx, row, composed, delivery="failed", error=error)

        await self.store.write(mark)

    async def _give_up_raw(self, row_id: int, error: str) -> None:
        def mark(tx: WriteTx) -> None:
            tx.execute(
                "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?",
                (error[:MAX_ERROR_CHARS], row_id),
            )

        await self.store.write(mark)
        self._count("row")
        log.error("outbox.failed", outbox_id=row_id, reason="row", error=error)


def _fill_thread_message(
    tx: WriteTx,
    row: OutboxRow,
    composed: ComposedMail | None,
    *,
    delivery: str,
    error: str,
) -> None:
    """Show operators what was sent (or why not) on the intervention's thread."""
    if row.thread_message_id is None:
        return
    found = tx.execute(
        "SELECT extra FROM messages WHERE id = ?", (row.thread_message_id,)
    ).fetchone()
    if found is None:
        return
    try:
        extra = json.loads(found[0] or "{}")
    except json.JSONDecodeError:
        extra = {}
    if not isinstance(extra, dict):
        extra = {}
    extra["delivery"] = delivery
    if error:
        extra["delivery_error"] = error[:MAX_ERROR_CHARS]
    else:
        extra.pop("delivery_error", None)
    if composed is None:
        tx.execute(
            "UPDATE messages SET extra = ? WHERE id = ?",
            (json.dumps(extra, ensure_ascii=False), row.thread_message_id),
        )
        return
    tx.execute(
        "UPDATE messages SET subject = ?, body_text = ?, from_addr = ?, extra = ? WHERE id = ?",
        (composed.subject, composed.body_text, composed.from_addr,
         json.dumps(extra, ensure_ascii=False), row.thread_message_id),
    )
