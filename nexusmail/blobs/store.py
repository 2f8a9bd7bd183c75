"""What every blob store promises: bytes kept under their SHA-256, and handed back only
while they still hash to it.

A blob is named by the hex SHA-256 of its bytes, so writing the same bytes twice, from
one daemon or from several at once, is harmless and keeps one copy. A blob is written
before the commit of the row that names it; a blob whose commit failed is an orphan,
swept by `nexusmail blobs gc` once it is older than a grace period. All methods block
(disk or network): async callers run them with asyncio.to_thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from nexusmail.blobs.digest import sha256_hex

log = structlog.get_logger(__name__)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class BlobError(Exception):
    """The blob store could not do what was asked; the message says which blob and why."""


class BlobUnavailable(BlobError):
    """The store could not be reached or refused the request: try again later."""


class BlobCorrupt(BlobError):
    """The stored bytes no longer hash to their name: they are never handed out."""


class BlobMissing(BlobError, FileNotFoundError):
    """No blob under this digest (a FileNotFoundError, as a missing local file is)."""


@dataclass(frozen=True)
class StoredBlob:
    """One blob as a listing sees it, for the orphan sweep."""

    digest: str
    size: int
    modified: datetime  # aware, UTC


class BlobStore(Protocol):
    """Where attachment bytes live. Every method blocks: call it off the event loop."""

    # Whether inbound mails' raw bytes go here too rather than into the database: an
    # object store takes them out of the database's size and backups; a local store
    # keeps the layout every existing installation has (raw mail in the database).
    holds_raw_mail: bool

    def put(self, data: bytes) -> str:
        """Keep `data` durably (or find it already kept); return its SHA-256."""
        ...

    def get(self, digest: str) -> bytes:
        """The bytes named `digest`, checked against it (BlobMissing, BlobCorrupt,
        BlobUnavailable)."""
        ...

    def scan(self) -> Iterator[StoredBlob]:
        """Every blob kept, in no particular order."""
        ...

    def stat(self, digest: str) -> StoredBlob | None:
        """The blob named `digest` as a listing would show it now; None if absent."""
        ...

    def delete(self, digest: str) -> None:
        """Remove the blob named `digest`, if it is there."""
        ...

    def describe(self) -> str:
        """Where the blobs are, for logs and messages (never a credential)."""
        ...

    def close(self) -> None:
        """Let go of connections; the store is not used afterwards."""
        ...


def check_digest(digest: str) -> str:
    """`digest` if it is a lower-case hex SHA-256, else ValueError (never a path part)."""
    if not _DIGEST.match(digest):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return digest


def is_digest(name: str) -> bool:
    return bool(_DIGEST.match(name))


def verified(digest: str, data: bytes, where: str) -> bytes:
    """`data` if it hashes to `digest`; else logged and BlobCorrupt. A disk that rots or
    an object someone overwrote must never reach an operator or a customer as if it
    were the file that was mailed."""
    actual = sha256_hex(data)
    if actual != digest:
        log.error("blobs.corrupt", sha256=digest, actual_sha256=actual, size=len(data),
                  store=where)
        raise BlobCorrupt(f"blob {digest} in {where} fails its SHA-256 check "
                          f"(its bytes hash to {actual}): not served")
    return data
