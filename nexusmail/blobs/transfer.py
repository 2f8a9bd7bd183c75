"""Putting a local blobs/ tree (a data dir's, or a backup's) into the configured store:
how an installation moves its attachments to S3, and how a backup taken with local
files is restored onto an S3 store. Each file goes through the store's put, so its
name is checked against its bytes; a file that does not match is counted, not put."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nexusmail.blobs.local import LocalBlobStore
from nexusmail.blobs.store import BlobCorrupt, BlobStore


@dataclass
class TransferReport:
    files: int = 0
    bytes: int = 0
    damaged: int = 0  # bytes not matching the file name: left out


def put_tree(root: Path, store: BlobStore,
             progress: Callable[[TransferReport], None] = lambda _: None,
             every: int = 500) -> TransferReport:
    """Put every blob under `root` (ab/cd/<sha256>) into `store` (blocking). Writing a
    digest the store already has costs one request and changes nothing, so an
    interrupted run is simply run again."""
    source = LocalBlobStore(root)
    report = TransferReport()
    for blob in source.scan():
        try:
            data = source.get(blob.digest)  # checked: a damaged file is not copied
        except BlobCorrupt:
            report.damaged += 1
            continue
        store.put(data)
        report.files += 1
        report.bytes += len(data)
        if report.files % every == 0:
            progress(report)
    progress(report)
    return report
