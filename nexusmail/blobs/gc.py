"""The orphan sweep: blobs no row names, left by a commit that failed after its write.

A blob is written before the commit that names it, so a crash or a refused commit leaves
it behind. The sweep lists the store, keeps every blob younger than the grace period
(its commit may still be coming), asks the database which of the older ones an
attachment or an inbound mail's raw_messages row names, and removes the rest. Writing
an existing blob again refreshes its age (see the stores' put), so a blob that a new
mail has just named is never old.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from nexusmail.blobs.store import BlobStore, StoredBlob
from nexusmail.storage.connections import Storage

# Digests asked about per query: far below SQLite's and PostgreSQL's parameter limits.
_BATCH = 500


@dataclass
class SweepReport:
    scanned: int = 0
    young: int = 0            # within the grace period: left alone whatever they are
    referenced: int = 0
    removed: int = 0
    removed_bytes: int = 0
    dry_run: bool = False
    removed_digests: list[str] = field(default_factory=list)


async def sweep_orphans(store: Storage, blobs: BlobStore, *, cutoff: datetime,
                        dry_run: bool = False,
                        progress: Callable[[SweepReport], None] = lambda _: None
                        ) -> SweepReport:
    """Remove the blobs modified before `cutoff` that no attachment row names (with
    `dry_run`, only count them). `progress` is called after each batch."""
    report = SweepReport(dry_run=dry_run)
    candidates: list[StoredBlob] = []
    listing = blobs.scan()
    while True:
        batch = await asyncio.to_thread(_next_batch, listing)
        if not batch:
            break
        for blob in batch:
            report.scanned += 1
            if blob.modified >= cutoff:
                report.young += 1
            else:
                candidates.append(blob)
        if len(candidates) >= _BATCH:
            await _settle(store, blobs, candidates, report, cutoff)
            candidates = []
        progress(report)
    await _settle(store, blobs, candidates, report, cutoff)
    progress(report)
    return report


def _next_batch(listing: Iterator[StoredBlob]) -> list[StoredBlob]:
    """Up to a batch of the listing (blocking: the store lists over disk or network)."""
    out: list[StoredBlob] = []
    for blob in listing:
        out.append(blob)
        if len(out) >= _BATCH:
            break
    return out


async def _settle(store: Storage, blobs: BlobStore, candidates: Sequence[StoredBlob],
                  report: SweepReport, cutoff: datetime) -> None:
    if not candidates:
        return
    named = await _named(store, [blob.digest for blob in candidates])
    for blob in candidates:
        if blob.digest in named:
            report.referenced += 1
            continue
        if not report.dry_run and not await asyncio.to_thread(
                _delete_if_still_old, blobs, blob.digest, cutoff):
            report.young += 1  # written again since the listing: a mail names it now
            continue
        report.removed += 1
        report.removed_bytes += blob.size
        report.removed_digests.append(blob.digest)


def _delete_if_still_old(blobs: BlobStore, digest: str, cutoff: datetime) -> bool:
    """Delete the blob unless it was written again since the listing (a new mail with
    the same bytes refreshes its age before its commit names it). What is left is the
    moment between this look and the delete: a put landing exactly there would lose its
    blob; a grace far longer than any commit makes an orphan being named again rare,
    and this look makes that moment milliseconds wide."""
    current = blobs.stat(digest)
    if current is None:
        return True  # already gone: counted as removed
    if current.modified >= cutoff:
        return False
    blobs.delete(digest)
    return True


async def _named(store: Storage, digests: Sequence[str]) -> set[str]:
    """Which of `digests` a row names (an attachment, or an inbound mail's raw bytes),
    asked right before the removal."""
    marks = ", ".join("?" * len(digests))
    named: set[str] = set()
    async with store.read() as conn:
        for table in ("attachments", "raw_messages"):
            rows = await conn.execute_fetchall(
                f"SELECT DISTINCT sha256 FROM {table} WHERE sha256 IN ({marks})",  # noqa: S608
                tuple(digests))
            named.update(str(row[0]) for row in rows)
    return named
