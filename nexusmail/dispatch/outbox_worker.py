"""The outbox worker: the only part that talks to the relay; the loop and its policy.

It picks pending rows that are due, composes each (jinja2), hands it to the
transport and records the outcome in one write (the statements are in
tickets/outbox.py): `sent`, a later retry with
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
copy that comes back. Each sent row is marked before its relay connection carries
the next mail, so a crash repeats at most one mail per connection in use
(`concurrency`): marking a batch at once saved commits but let a crash resend the
whole batch.

Several daemons. Each pass first claims its rows (tickets.outbox.claim_due) under a
lease of `[outbound] lease_s`, renewed every third of it while the pass runs; rows the
pass did not try are given back at its end. Every outcome is fenced by the claim: a
daemon that stalled past its lease, whose rows another daemon took over, records
nothing, and the row is sent again by its new holder under the same Message-ID (still
at least once). The rows of a daemon killed mid-pass wait out their lease, then go to
whichever daemon claims them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta
from functools import partial

import structlog

from nexusmail.blobs.store import BlobUnavailable
from nexusmail.clock import Clock, iso
from nexusmail.config import MailSettings, OutboundSettings
from nexusmail.dispatch.compose import ComposedMail, ComposeError, Composer, OutboxRow
from nexusmail.dispatch.transport import (
    PermanentSendError,
    RelayUnavailableError,
    TransientSendError,
    Transport,
)
from nexusmail.service.metrics import Metrics
from nexusmail.storage.connections import DbRow, Storage, WriteTx
from nexusmail.tickets.outbox import (
    Claim,
    ShownMail,
    claim_due,
    mark_failed,
    mark_retry,
    mark_sent,
    release_claim,
    renew_claims,
)
from nexusmail.tickets.workers import new_incarnation_id

log = structlog.get_logger(__name__)

JITTER = 0.2  # ±20%: rows that failed together do not all come back together
# Rows claimed per pass of the loop: a few per relay connection, so daemons sharing the
# outbox share a backlog, and a killed daemon strands few rows until its lease ends.
CLAIM_BATCH = 16


class OutboxWorker:
    """Sends due outbox rows; `run` loops until its stop event is set.

    Built by the daemon once, e.g.::

        composer = Composer(s.mail, blob_loader=open_blob_store(s).get, clock=clock)
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
        store: Storage,
        transport: Transport,
        composer: Composer,
        clock: Clock,
        outbound: OutboundSettings,
        envelope_sender: str,
        *,
        concurrency: int = 4,
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.store = store
        # Whose claims this worker's are: the daemon's incarnation id (workers table).
        self.worker_id = worker_id or new_incarnation_id()
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

    async def reload_templates(self, mail: MailSettings) -> None:
        """Compose the next mails from `mail`'s templates, read now (off the loop)."""
        old = self.composer
        self.composer = await asyncio.to_thread(
            Composer, mail, blob_loader=old.blob_loader, clock=old.clock)

    def yield_to_ingest(self, idle: asyncio.Event) -> None:
        """Hold due rows back while `idle` is clear (mail being accepted), each at most
        `yield_to_ingest_s` (module docstring)."""
        self.ingest_idle = idle

    def notify(self) -> None:
        """Something was enqueued: send it now rather than after the poll interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, batch: int = CLAIM_BATCH) -> None:
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
            lease_s = self.outbound.lease_s
            rows = await self.store.write(partial(
                claim_due, now=now, limit=limit, worker_id=self.worker_id, lease_s=lease_s))
            if not rows:
                return 0
            slots = asyncio.Semaphore(self.concurrency)
            composed: dict[int, ComposedMail | Exception] = {}
            renewing = asyncio.create_task(self._renew_leases(lease_s))

            async def bounded(raw: DbRow) -> bool:
                # The slot is held until the outcome is committed: a crash can find at
                # most one accepted-but-unmarked mail per slot.
                async with slots:
                    now = self.clock.now()
                    if self._relay_paused(now):
                        return False  # the relay went down during this pass: leave it
                    if self._held_for_ingest(raw, now):
                        return False
                    await self._process(raw, composed.pop(int(raw["id"]), None))
                    return True

            try:
                # While ingest is busy rows may be held back: each is composed as it goes.
                if not self._ingest_busy():
                    composed = await self._compose_all(rows)
                results = await asyncio.gather(*(bounded(raw) for raw in rows),
                                               return_exceptions=True)
            finally:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            untried = [raw for raw, r in zip(rows, results, strict=True) if r is False]
            if untried:
                await self.store.write(partial(self._release, untried))
            # Every row got its turn; now let an unexpected failure reach the loop.
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            if failure is not None:
                raise failure
            return sum(1 for r in results if r is True)

    async def _compose_all(self, rows: list[DbRow]) -> dict[int, ComposedMail | Exception]:
        """Every row of the pass composed in one trip to a thread (template files and
        attachment blobs are read from disk), by outbox id, with the exception for a
        row that could not be. A trip per row, while the loop sends the other rows,
        handed the GIL over both ways each time: ~0.3 ms of CPU per mail, more than
        composing it (bench/ack_cost.py)."""
        parsed = []
        for raw in rows:
            with contextlib.suppress(ComposeError):  # _process gives the row up
                parsed.append(OutboxRow.from_db(raw))
        return await asyncio.to_thread(self._compose_each, self.composer, parsed)

    @staticmethod
    def _compose_each(composer: Composer, rows: list[OutboxRow]
                      ) -> dict[int, ComposedMail | Exception]:
        composed: dict[int, ComposedMail | Exception] = {}
        for row in rows:
            try:
                composed[row.id] = composer.compose(row)
            except Exception as exc:  # this row's outcome; the others still go
                composed[row.id] = exc
        return composed

    def _ingest_busy(self) -> bool:
        """Whether due rows should wait for ingest to go quiet (yield_to_ingest_s)."""
        return (self.ingest_idle is not None and not self.ingest_idle.is_set()
                and self.outbound.yield_to_ingest_s > 0)

    async def _renew_leases(self, lease_s: float) -> None:
        """While the pass runs: keep its claims, every third of the lease (a slow relay
        must not let another daemon take rows this one is sending)."""
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await self.store.write(partial(
                    renew_claims, now=self.clock.now(), worker_id=self.worker_id,
                    lease_s=lease_s))
            except Exception:  # a missed renewal costs at most a duplicate, never a loss
                log.exception("outbox.renew_failed")

    def _release(self, rows: list[DbRow], tx: WriteTx) -> None:
        for raw in rows:
            release_claim(tx, int(raw["id"]), self._claim(raw))

    def _claim(self, raw: DbRow) -> Claim:
        return Claim(self.worker_id, int(raw["claim_seq"]))

    def _held_for_ingest(self, raw: DbRow, now: datetime) -> bool:
        """Whether this row waits for ingest to go quiet; notes when it may go anyway."""
        if not self._ingest_busy():
            return False
        due = datetime.fromisoformat(str(raw["next_attempt_at"]))
        may_go_at = due + timedelta(seconds=self.outbound.yield_to_ingest_s)
        if now >= may_go_at:
            return False
        if self.held_until is None or may_go_at < self.held_until:
            self.held_until = may_go_at
        return True

    def _relay_paused(self, now: datetime) -> bool:
        return self.relay_paused_until is not None and now < self.relay_paused_until

    async def _process(self, raw: DbRow, composed: ComposedMail | Exception | None) -> None:
        """Send one row (composed first unless `composed` is what composing it gave),
        and commit its outcome."""
        claim = self._claim(raw)
        try:
            row = OutboxRow.from_db(raw)
        except ComposeError as exc:
            await self._give_up_raw(int(raw["id"]), claim, str(exc))
            return None
        bound = log.bind(
            message_id=row.message_id,
            intervention=row.intervention_number,
            recipient=row.recipient,
            kind=row.kind,
            attempt=row.attempts + 1,
        )
        try:
            if composed is None:
                # Template files and attachment blobs are read from disk: off the loop.
                composed = await asyncio.to_thread(self.composer.compose, row)
            elif isinstance(composed, Exception):
                raise composed
        except ComposeError as exc:
            await self._mark_failed(row, claim, None, str(exc))
            self._count("compose")
            bound.error("outbox.failed", reason="compose", error=str(exc))
            return None
        except BlobUnavailable as exc:
            # The shared blob store is out of reach for now, the attachment is not lost:
            # the row waits as one the relay deferred.
            retry_at = (self.clock.now() + self.backoff(row.attempts)).replace(microsecond=0)
            await self._mark_retry(row, claim, retry_at, str(exc))
            self._count("retry")
            bound.warning("outbox.retry", reason="blobs", error=str(exc), retry_at=iso(retry_at))
            return None
        try:
            await self.transport.send(
                composed.message, sender=self.envelope_sender, recipients=[row.recipient]
            )
        except PermanentSendError as exc:
            await self._mark_failed(row, claim, composed, str(exc))
            self._count("refused")
            bound.error("outbox.failed", reason="refused", error=str(exc), code=exc.code)
            return None
        except TransientSendError as exc:
            attempts = row.attempts + 1
            if attempts >= self.outbound.max_attempts:
                await self._mark_failed(row, claim, composed,
                                        f"gave up after {attempts} attempts: {exc}")
                self._count("attempts")
                bound.error("outbox.failed", reason="attempts", error=str(exc), code=exc.code)
                return None
            now = self.clock.now()
            # Whole seconds, as the store keeps it: the pause and the row agree.
            retry_at = (now + self.backoff(row.attempts)).replace(microsecond=0)
            if isinstance(exc, RelayUnavailableError):
                self._pause_relay(now, retry_at)
            await self._mark_retry(row, claim, retry_at, str(exc))
            self._count("retry")
            bound.warning("outbox.retry", error=str(exc), code=exc.code, retry_at=iso(retry_at))
            return None
        self.relay_paused_until = None
        await self._mark_sent(row, claim, composed)
        self._count("sent")
        bound.info("outbox.sent", subject=composed.subject)

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

    async def _mark_sent(self, row: OutboxRow, claim: Claim, composed: ComposedMail) -> None:
        sent_at = self.clock.now()

        def mark(tx: WriteTx) -> bool:
            return mark_sent(tx, row.id, row.thread_message_id, claim, sent_at=sent_at,
                             shown=_shown(composed))

        self._check_held(await self.store.write(mark), row.id)

    async def _mark_retry(self, row: OutboxRow, claim: Claim, retry_at: datetime,
                          error: str) -> None:
        def mark(tx: WriteTx) -> bool:
            return mark_retry(tx, row.id, claim, retry_at=retry_at, error=error)

        self._check_held(await self.store.write(mark), row.id)

    async def _mark_failed(
        self, row: OutboxRow, claim: Claim, composed: ComposedMail | None, error: str
    ) -> None:
        def mark(tx: WriteTx) -> bool:
            return mark_failed(tx, row.id, row.thread_message_id, claim, error=error,
                               shown=None if composed is None else _shown(composed))

        self._check_held(await self.store.write(mark), row.id)

    async def _give_up_raw(self, row_id: int, claim: Claim, error: str) -> None:
        def mark(tx: WriteTx) -> bool:
            return mark_failed(tx, row_id, None, claim, error=error, shown=None,
                               attempted=False)

        self._check_held(await self.store.write(mark), row_id)
        self._count("row")
        log.error("outbox.failed", outbox_id=row_id, reason="row", error=error)

    def _check_held(self, marked: bool, row_id: int) -> None:
        """A mark that found its claim taken over: the row's new holder records the
        outcome (and may send the mail again, under the same Message-ID)."""
        if not marked:
            log.warning("outbox.claim_lost", outbox_id=row_id, worker=self.worker_id)


def _shown(composed: ComposedMail) -> ShownMail:
    return ShownMail(composed.subject, composed.body_text, composed.from_addr)
