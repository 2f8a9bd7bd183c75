"""The embedded blob store: files under a directory, <root>/ab/cd/<sha256>.

The layout of the data dir's blobs/ since the first release, so existing data is read
as it is. Files are written to a temporary name, fsynced and renamed (files.py): a crash
leaves the whole file or none. Several writers of one digest each rename the same bytes
into place, so all of them succeed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from nexusmail.blobs.digest import sha256_hex
from nexusmail.blobs.store import StoredBlob, check_digest, is_digest, verified
from nexusmail.files import PRIVATE_MODE, write_atomically


class LocalBlobStore:
    holds_raw_mail = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        target = self.path_for(digest)
        try:
            # Named again: young again, so the orphan sweep's grace counts from now.
            os.utime(target)
            return digest
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        # Private like the rest of the data dir: attachments are customers' documents.
        write_atomically(target, data, mode=PRIVATE_MODE)
        return digest

    def get(self, digest: str) -> bytes:
        # FileNotFoundError when it is missing, as before this store had a protocol.
        return verified(digest, self.path_for(digest).read_bytes(), self.describe())

    def scan(self) -> Iterator[StoredBlob]:
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for path in second.iterdir():
                    # Temporary files of a write in progress start with a dot.
                    if not is_digest(path.name):
                        continue
                    stat = path.stat()
                    yield StoredBlob(path.name, stat.st_size,
                                     datetime.fromtimestamp(stat.st_mtime, UTC))

    def stat(self, digest: str) -> StoredBlob | None:
        try:
            stat = self.path_for(digest).stat()
        except FileNotFoundError:
            return None
        return StoredBlob(digest, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def describe(self) -> str:
        return os.fspath(self.root)

    def close(self) -> None:
        return None
