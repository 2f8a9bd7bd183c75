"""One IMAP account's collection loop: connect, collect by UID, acknowledge, wait, repeat.

The field failures this loop is shaped against:
- mails skipped because someone read them in webmail first: new means "UID above the
  checkpoint", never "not \\Seen", and fetching uses BODY.PEEK;
- inboxes lost after a setup error: mails are moved or flagged, never deleted, and
  only after `Ingest.accept` returned (the commit SMTP's 250 waits for too);
- duplicates after a flag-store error: a crash between commit and acknowledgement
  fetches the mail again, ingest answers DUPLICATE, and only then is it acknowledged;
- new mail skipped after the server renumbered its UIDs: a changed UIDVALIDITY starts
  the folder over, reconciled by Message-ID (known mails are only acknowledged) and
  by content hash (idempotent ingest), never skipped and never imported twice;
- two daemons on one database collecting one folder: only the holder of the folder's
  lease connects, saves the checkpoint and moves or flags (see imap.lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, TypeVar

import structlog
from imapclient.exceptions import IMAPClientError

from nexusmail.clock import Clock, iso
from nexusmail.config import ImapAccount, Settings
from nexusmail.ingest.accept import Envelope, Ingest, TemporaryFailure
from nexusmail.ingest.imap.checkpoint import (
    Checkpoint,
    OversizeMail,
    known_mails,
    load_checkpoint,
    oversize_uids,
    record_oversize,
    save_checkpoint,
)
from nexusmail.ingest.imap.lease import (
    Lease,
    LeaseLost,
    acquire_lease,
    release_lease,
    renew_lease,
)
from nexusmail.ingest.imap.session import (
    AuthFailed,
    CollectError,
    ImapSession,
    chunk_by_size,
    describe_error,
)
from nexusmail.ingest.imap.share import FairShare
from nexusmail.tickets.apply_mail import IngestResult
from nexusmail.tickets.models import Outcome

log = structlog.get_logger(__name__)

T = TypeVar("T")

# One FETCH of bodies holds at most this many mails / bytes in memory.
FETCH_MAX_MAILS = 50
FETCH_MAX_BYTES = 32 * 1024 * 1024
JITTER = 0.2


@dataclass
class AccountState:
    """What `GET /api/v1/health` shows per account."""

    connected: bool = False
    idle: bool = False
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    uidvalidity: int | None = None
    highest_uid: int | None = None
    stored: int = 0            # mails accept committed (duplicates not counted)
    duplicates: int = 0
    acknowledged: int = 0      # moved or flagged
    oversize_left: int = 0     # left on the server, above [limits] max_message_bytes
    login_failures: int = 0
    connection_failures: int = 0
    lease_epoch: int | None = None  # set while this daemon holds the folder's lease

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def backoff_s(attempt: int, low_s: float, high_s: float) -> float:
    """Exponential from low_s to high_s, +-20% so many daemons do not retry in step."""
    base = min(high_s, low_s * 2.0 ** max(0, attempt - 1))
    return base * random.uniform(1 - JITTER, 1 + JITTER)


class AccountCollector:
    def __init__(self, account: ImapAccount, settings: Settings, ingest: Ingest, clock: Clock,
                 *, owner: str, share: FairShare | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.account = account
        self.owner = owner
        self.share = share
        self._lease: Lease | None = None
        self.imap = settings.imap
        self.ingest = ingest
        self.store = ingest.store
        self.clock = clock
        self.ssl_context = ssl_context
        self.source = f"imap:{account.name}"
        self.state = AccountState()
        self._checkpoint: Checkpoint | None = None
        self._oversize: set[int] = set()
        self._reported: str | None = None
        # imapclient is blocking and not thread-safe: one thread owns the connection.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"imap-{account.name}")
        self._stop_flag = threading.Event()

    @property
    def max_bytes(self) -> int:
        # Read per fetch, so a reloaded [limits] max_message_bytes needs no reconnect.
        return self.ingest.settings.limits.max_message_bytes

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, partial(fn, *args))

    async def run(self, stop: asyncio.Event) -> None:
        relay = asyncio.create_task(self._relay_stop(stop))
        try:
            with structlog.contextvars.bound_contextvars(imap_account=self.account.name):
                await self._run(stop)
        finally:
            relay.cancel()
            self._stop_flag.set()
            self._executor.shutdown(wait=False)

    async def _relay_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop_flag.set()  # ends an IDLE wait in the account's thread

    async def _run(self, stop: asyncio.Event) -> None:
        attempt = 0
        try:
            while not stop.is_set():
                if not await self._take_lease():
                    # Another daemon collects this folder: look again within a lease.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=backoff_s(
                            1, self.imap.lease_s / 3, self.imap.lease_s / 3))
                    continue
                attempt = await self._connection(stop, attempt)
        finally:
            await self._give_back_lease()

    async def _take_lease(self) -> bool:
        if self._lease is None and self.share is not None \
                and not await self.share.may_take():
            return False  # this daemon has its share; the other daemons take the rest
        try:
            lease = await self.store.write(partial(
                acquire_lease, account=self.account.name, folder=self.account.folder,
                owner=self.owner, lease_s=self.imap.lease_s, now=self.clock.now()))
        except Exception as exc:  # the database away: report, try again, never give up
            self._failed(describe_error(exc), login=False, retry_in_s=self.imap.lease_s / 3)
            return False
        if lease is not None and lease != self._lease:
            log.info("imap.lease_taken", owner=self.owner, epoch=lease.epoch)
            # What another holder did meanwhile is only in the database.
            self._checkpoint = None
        self._lease = lease
        self.state.lease_epoch = None if lease is None else lease.epoch
        return lease is not None

    async def _renew(self) -> Lease:
        """Renew the lease or raise LeaseLost: called before every move or flag and
        between waits, at least every third of the lease."""
        lease = self._lease
        if lease is None or not await self.store.write(partial(
                renew_lease, lease=lease, lease_s=self.imap.lease_s, now=self.clock.now())):
            self._lost()
            raise LeaseLost(f"{self.account.name}/{self.account.folder} has another holder")
        return lease

    def _lost(self) -> None:
        log.warning("imap.lease_lost", owner=self.owner,
                    epoch=None if self._lease is None else self._lease.epoch)
        self._lease = None
        self._checkpoint = None
        self.state.lease_epoch = None

    async def _give_back_lease(self) -> None:
        lease, self._lease = self._lease, None
        self.state.lease_epoch = None
        if lease is not None:
            with contextlib.suppress(Exception):  # stopping: it expires anyway
                await self.store.write(partial(release_lease, lease=lease,
                                               now=self.clock.now()))

    async def _connection(self, stop: asyncio.Event, attempt: int) -> int:
        """One connection's life while holding the lease; the next attempt number."""
        session = ImapSession(self.account, timeout_s=self.imap.timeout_s,
                              token_timeout_s=self.imap.oauth2_command_timeout_s,
                              ssl_context=self.ssl_context)
        delay = 0.0
        try:
            await self._call(session.connect)
            attempt = 0
            await self._serve(session, stop)
        except LeaseLost:
            pass  # back to waiting for the lease; nothing failed
        except AuthFailed as exc:
            delay = self.imap.login_retry_s
            self._failed(str(exc), login=True, retry_in_s=delay)
        except (CollectError, IMAPClientError, OSError, TemporaryFailure) as exc:
            attempt += 1
            delay = backoff_s(attempt, self.imap.reconnect_min_s, self.imap.reconnect_max_s)
            self._failed(describe_error(exc), login=False, retry_in_s=delay)
        except Exception as exc:  # a bug must not end collection: report, retry
            attempt += 1
            delay = backoff_s(attempt, self.imap.reconnect_min_s, self.imap.reconnect_max_s)
            log.exception("imap.collector_failed")
            self._failed(describe_error(exc), login=False, retry_in_s=delay)
        finally:
            self.state.connected = self.state.idle = False
            await self._call(session.close)
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        return attempt

    async def _serve(self, session: ImapSession, stop: asyncio.Event) -> None:
        use_idle = self.account.use_idle and session.has_idle
        self.state.connected, self.state.idle = True, use_idle
        log.info("imap.connected", host=self.account.host, folder=self.account.folder,
                 idle=use_idle)
        if self._checkpoint is None:
            self._checkpoint = await self.store.write(partial(
                load_checkpoint, account=self.account.name, folder=self.account.folder))
            if self._checkpoint is not None:
                await self._load_oversize(self._checkpoint.uidvalidity)
        while not stop.is_set():
            # Every cycle is a sweep: re-select (a new UIDVALIDITY shows), collect above
            # the checkpoint, acknowledge what a crash left unacknowledged.
            await self._sync(session, stop)
            self._succeeded()
            if stop.is_set():
                return
            await self._wait(session, use_idle, stop)

    async def _wait(self, session: ImapSession, use_idle: bool, stop: asyncio.Event) -> None:
        """Until new mail (IDLE), the next sweep or poll, or stop; the lease is renewed
        at least every third of its length meanwhile."""
        interval = min(self.imap.sweep_interval_s, self.imap.idle_renew_s) if use_idle \
            else self.imap.poll_interval_s
        deadline = self.clock.monotonic() + interval
        while not stop.is_set():
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return
            wait_s = min(left, self.imap.lease_s / 3)
            if use_idle:
                if await self._call(session.wait_idle, wait_s, self._stop_flag):
                    return
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait_s)
            if not stop.is_set():
                await self._renew()
                await self._keep_or_shed()

    async def _keep_or_shed(self) -> None:
        """Let go of the folder when this daemon holds more than its share."""
        if self.share is None or await self.share.may_keep(self.account.name):
            return
        log.info("imap.lease_shed", owner=self.owner)
        await self._give_back_lease()
        self._checkpoint = None
        raise LeaseLost("more than this daemon's share")

    async def _sync(self, session: ImapSession, stop: asyncio.Event) -> None:
        folder = await self._call(session.select)
        checkpoint = self._checkpoint
        reconciling = checkpoint is not None and checkpoint.uidvalidity != folder.uidvalidity
        if checkpoint is None or reconciling:
            if reconciling and checkpoint is not None:
                log.warning("imap.uidvalidity_changed", old=checkpoint.uidvalidity,
                            new=folder.uidvalidity, messages=folder.exists)
            checkpoint = Checkpoint(folder.uidvalidity, 0)
            await self._load_oversize(folder.uidvalidity)
            self._checkpoint = checkpoint
        self.state.uidvalidity = checkpoint.uidvalidity
        self.state.highest_uid = checkpoint.highest_uid
        new = await self._call(session.uids_above, checkpoint.highest_uid)
        if new:
            await self._collect(session, new, reconciling=reconciling, stop=stop)
        highest = self._checkpoint.highest_uid if self._checkpoint else 0
        waiting = [uid for uid in await self._call(session.unacknowledged, highest)
                   if uid not in self._oversize]
        if waiting and not stop.is_set():
            await self._renew()
            await self._call(session.acknowledge, waiting)
            self.state.acknowledged += len(waiting)
            log.info("imap.acknowledged_stored", count=len(waiting), after=self.account.after)

    async def _collect(self, session: ImapSession, uids: list[int], *, reconciling: bool,
                       stop: asyncio.Event) -> None:
        assert self._checkpoint is not None
        uidvalidity = self._checkpoint.uidvalidity
        sizes = await self._call(session.sizes, uids)
        too_big = [u for u in uids if sizes.get(u, 0) > self.max_bytes]
        await self._report_oversize(session, uidvalidity, too_big, sizes)
        known: set[int] = set()
        if reconciling:
            known = await self._known_by_message_id(
                session, [u for u in uids if u not in self._oversize], sizes)
        fetch_sizes = {u: (0 if u in self._oversize else s) for u, s in sizes.items()}
        chunks = chunk_by_size(uids, fetch_sizes, max_count=FETCH_MAX_MAILS,
                               max_bytes=FETCH_MAX_BYTES)
        wanted = [[u for u in chunk if u not in self._oversize and u not in known]
                  for chunk in chunks]
        pending = self._prefetch(session, wanted, 0)
        try:
            for index, chunk in enumerate(chunks):
                assert pending is not None
                bodies = await pending
                # The next chunk downloads in the account's thread while this one is
                # parsed and committed on the loop.
                pending = None if stop.is_set() else self._prefetch(session, wanted, index + 1)
                await self._store_chunk(session, chunk, wanted[index], bodies, known,
                                        uidvalidity)
                if stop.is_set():
                    return
        finally:
            if pending is not None:
                pending.cancel()

    def _prefetch(self, session: ImapSession, wanted: list[list[int]],
                  index: int) -> asyncio.Future[dict[int, bytes]] | None:
        if index >= len(wanted):
            return None
        return asyncio.ensure_future(self._call(session.bodies, wanted[index]))

    async def _store_chunk(self, session: ImapSession, chunk: list[int], wanted: list[int],
                           bodies: dict[int, bytes], known: set[int], uidvalidity: int) -> None:
        """Accept a chunk's mails, advance the checkpoint, then acknowledge them."""
        assert self._checkpoint is not None
        fetched = [u for u in wanted if u in bodies]
        results = await asyncio.gather(
            *(self._accept(bodies.pop(u)) for u in fetched), return_exceptions=True)
        outcome = dict(zip(fetched, results, strict=True))
        done_upto, stored, failure = self._checkpoint.highest_uid, [], None
        for uid in chunk:  # UID order: the checkpoint never passes a failed mail
            result = outcome.get(uid)
            if isinstance(result, BaseException):
                failure = result
                break
            if result is not None or uid in known:
                stored.append(uid)
            done_upto = uid  # stored, known, oversize, or gone from the server
        lease = await self._renew()
        if done_upto > self._checkpoint.highest_uid:
            checkpoint = Checkpoint(uidvalidity, done_upto)
            if not await self.store.write(partial(
                    save_checkpoint, checkpoint=checkpoint, lease=lease,
                    now=self.clock.now())):
                # Taken over since the renewal, or the new holder is further already.
                self._lost()
                raise LeaseLost(f"checkpoint {done_upto} refused")
            self._checkpoint = checkpoint
            self.state.highest_uid = done_upto
        # Only now, after the commit: a crash before this line fetches them again.
        await self._call(session.acknowledge, stored)
        self.state.acknowledged += len(stored)
        if failure is not None:
            raise failure

    async def _accept(self, raw: bytes) -> IngestResult:
        result = await self.ingest.accept(raw, Envelope(mail_from=None, rcpt_tos=()),
                                          source=self.source)
        if result.outcome is Outcome.DUPLICATE:
            self.state.duplicates += 1
        else:
            self.state.stored += 1
        return result

    async def _known_by_message_id(self, session: ImapSession, uids: Sequence[int],
                                   sizes: dict[int, int]) -> set[int]:
        """After a UIDVALIDITY change: mails the inbound log already has (same Message-ID,
        sender and size) need no download, only their acknowledgement. Anything else is
        fetched, and ingest decides by content: a mailer may reuse a Message-ID for
        another mail, and that one must not be skipped."""
        facts = await self._call(session.headers, uids)
        keys = {(f.message_id, f.sender, sizes.get(uid, -1))
                for uid, f in facts.items() if f.message_id}
        found = await self.store.write(partial(known_mails, keys=keys))
        known = {uid for uid, f in facts.items()
                 if f.message_id and (f.message_id, f.sender, sizes.get(uid, -1)) in found}
        log.info("imap.reconciled", known=len(known), to_fetch=len(uids) - len(known))
        return known

    async def _load_oversize(self, uidvalidity: int) -> None:
        self._oversize = await self.store.write(partial(
            oversize_uids, account=self.account.name, folder=self.account.folder,
            uidvalidity=uidvalidity))
        self.state.oversize_left = len(self._oversize)

    async def _report_oversize(self, session: ImapSession, uidvalidity: int,
                               uids: Sequence[int], sizes: dict[int, int]) -> None:
        """Too-large mails stay on the server, recorded once and reported once: never
        silently skipped, and not reported again at every poll."""
        fresh = [uid for uid in uids if uid not in self._oversize]
        if not fresh:
            return
        facts = await self._call(session.headers, fresh)
        mails = [OversizeMail(uid, sizes[uid], facts[uid].message_id if uid in facts else None,
                              facts[uid].sender if uid in facts else "",
                              facts[uid].subject if uid in facts else "") for uid in fresh]
        new = await self.store.write(partial(
            record_oversize, account=self.account.name, folder=self.account.folder,
            uidvalidity=uidvalidity, mails=mails, now=self.clock.now()))
        for mail in new:
            log.warning("imap.oversize_left", uid=mail.uid, size=mail.size,
                        limit=self.max_bytes, message_id=mail.message_id, sender=mail.sender,
                        subject=mail.subject)
        self._oversize.update(fresh)
        self.state.oversize_left = len(self._oversize)

    def _succeeded(self) -> None:
        self.state.last_success = iso(self.clock.now())
        if self._reported is not None:
            log.info("imap.recovered", previous_error=self._reported)
            self._reported = None

    def _failed(self, message: str, *, login: bool, retry_in_s: float) -> None:
        state = self.state
        state.last_error, state.last_error_at = message, iso(self.clock.now())
        if login:
            state.login_failures += 1
        else:
            state.connection_failures += 1
        # Once per change: a wrong password polled every few minutes must not flood the
        # log (nor the operator's alerting) with the same line.
        if message != self._reported:
            event = "imap.login_failed" if login else "imap.connection_failed"
            log.error(event, error=message, retry_in_s=round(retry_in_s, 1))
            self._reported = message
        else:
            log.debug("imap.still_failing", error=message, retry_in_s=round(retry_in_s, 1))
