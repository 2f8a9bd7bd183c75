"""Content-addressed attachment files under the data dir: blobs/ab/cd/<sha256>.

The same bytes are stored once whatever the number of mails carrying them. Files are
written to a temporary name, fsynced and renamed, so a crash leaves either the whole
file or none; they are written before the commit that refers to them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nexusmail.files import PRIVATE_MODE, write_atomically


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store `data` (blocking: call it off the event loop); return its sha256."""
        digest = sha256_hex(data)
        target = self.path_for(digest)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        # Private like the rest of the data dir: attachments are customers' documents.
        write_atomically(target, data, mode=PRIVATE_MODE)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path_for(digest).read_bytes()

