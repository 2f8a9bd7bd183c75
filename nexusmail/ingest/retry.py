"""Running a kept mail through ingest again: one quarantined after failed processing,
or held by the loop guard while its sender was muted.

The stored bytes go through `Ingest.accept` with `retry_of`, the same pipeline as SMTP,
and the inbound row is updated rather than a second one made. What a retry did comes
back as data, for each caller (the CLI, the admin page) to say in its own words.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from enum import StrEnum

from nexusmail.blobs.open import open_blob_store
from nexusmail.blobs.store import BlobError, BlobStore
from nexusmail.config import Settings
from nexusmail.i18n import Msg, message_of
from nexusmail.ingest.accept import Envelope, Ingest, TemporaryFailure
from nexusmail.storage.connections import Storage
from nexusmail.tickets import queries
from nexusmail.tickets.models import Outcome

# Kept for a retry: failed processing, or held by the loop guard.
RETRYABLE = (Outcome.QUARANTINED, Outcome.HELD)


class RetryState(StrEnum):
    MISSING = "missing"               # no such inbound mail
    NOT_WAITING = "not_waiting"       # processed already: nothing done
    NO_BYTES = "no_bytes"             # its raw bytes cannot be had
    STORAGE_FAILED = "storage_failed"  # the store failed; still kept for a retry
    STILL_KEPT = "still_kept"         # ran again, and is quarantined or held again
    DONE = "done"                     # went through now


@dataclass(frozen=True)
class RetryResult:
    """What a retry did to one mail: `outcome` is the row's (before, for NOT_WAITING;
    after, once it ran), `detail` the reason or the storage problem."""

    state: RetryState
    outcome: str = ""
    detail: str | Msg = ""
    intervention_number: int | None = None

    @property
    def settled(self) -> bool:
        """Nothing more to do: it went through now, or it was not waiting for a retry."""
        return self.state in (RetryState.DONE, RetryState.NOT_WAITING)


async def retry_inbound(ingest: Ingest, store: Storage, inbound_id: int) -> RetryResult:
    """Run inbound mail `inbound_id` through ingest again, if it is waiting for that."""
    async with store.read() as conn:
        row = await (await conn.execute(
            "SELECT outcome, source, envelope_from, envelope_to, raw_sha256 FROM inbound"
            " WHERE id = ?", (inbound_id,))).fetchone()
        raw = None if row is None else await queries.get_raw_message(conn, row[4])
    if row is None:
        return RetryResult(RetryState.MISSING)
    if row[0] not in RETRYABLE:
        return RetryResult(RetryState.NOT_WAITING, outcome=row[0])
    data = None if raw is None else await raw_bytes(raw, ingest.settings, ingest.blobs)
    if data is None:
        return RetryResult(RetryState.NO_BYTES)
    envelope = Envelope(row[2] or None, tuple(json.loads(row[3])))
    try:
        result = await ingest.accept(data, envelope, row[1], retry_of=inbound_id)
    except TemporaryFailure as exc:
        return RetryResult(RetryState.STORAGE_FAILED, detail=message_of(exc))
    state = RetryState.STILL_KEPT if result.outcome in RETRYABLE else RetryState.DONE
    return RetryResult(state, outcome=result.outcome, detail=result.reason or "",
                       intervention_number=result.intervention_number)


async def raw_bytes(raw: queries.RawMail, settings: Settings,
                    blobs: BlobStore | None = None) -> bytes | None:
    """The mail's bytes from its row or the blob store; None when they cannot be had
    (missing, failing their check, or the store out of reach)."""
    if not raw.in_blobs:
        return raw.data
    store = blobs if blobs is not None else await asyncio.to_thread(open_blob_store, settings)
    try:
        return await asyncio.to_thread(store.get, raw.sha256)
    except (OSError, BlobError):
        return None
    finally:
        if blobs is None:
            store.close()
