"""Where one SMTP DATA transfer goes while it is read: memory, then a spool file.

A small mail stays in memory as the pieces read (joined and unstuffed once at the
end, the fast path). Past a threshold the mail is unstuffed as it comes and written
to a private temporary file in the data dir's spool folder, so forty clients sending
20 MB each hold about a threshold each, not 800 MB. The file is removed when the
transfer ends, whatever the end: stored, refused as too big, or the client gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import structlog

log = structlog.get_logger(__name__)

# Unstuffed bytes gathered before one write to the spool file: one thread hop per
# 256 KiB rather than per piece read.
SPOOL_WRITE_BYTES = 256 * 1024
SPOOL_PREFIX = "data-"
# A spool file this old belongs to no transfer (RFC 5321 4.5.3.2.5 gives a DATA block
# 3 minutes, the end 10): a crashed daemon left it.
STALE_SPOOL_AGE_S = 3600.0


def unstuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: drop the dot a client put before each line starting with one."""
    if data.startswith(b"."):
        data = data[1:]
    return data.replace(b"\r\n.", b"\r\n")


class Unstuffer:
    """`unstuff` over a stream of pieces: the same bytes, whatever the cut points.

    A piece that ends in CR or CRLF may be the start of a CRLF-dot split across two
    pieces, so those bytes wait for the next piece.
    """

    def __init__(self) -> None:
        self._held = b""
        self._at_start = True

    def feed(self, piece: bytes) -> bytes:
        data = self._held + piece
        if self._at_start and data:
            self._at_start = False
            if data.startswith(b"."):
                data = data[1:]
        keep = 2 if data.endswith(b"\r\n") else 1 if data.endswith(b"\r") else 0
        self._held = data[len(data) - keep:] if keep else b""
        return data[:len(data) - keep].replace(b"\r\n.", b"\r\n")

    def finish(self) -> bytes:
        held, self._held = self._held, b""
        return held


class DataSink:
    """One DATA transfer's bytes, still dot-stuffed as read, minus the end marker's
    final ".\\r\\n" (the caller cuts it from the last piece).

    `spool_dir` None keeps everything in memory (tests of the protocol alone).
    """

    def __init__(self, spool_dir: Path | None, spool_threshold: int) -> None:
        self.spool_dir = spool_dir
        self.spool_threshold = spool_threshold
        self.size = 0  # unstuffed bytes once spooled; stuffed bytes kept in memory before
        self._parts: list[bytes] = []
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._unstuffer: Unstuffer | None = None
        self._file: BinaryIO | None = None
        self.path: Path | None = None
        # Set when the spool file could not be written (disk full): the rest of the
        # transfer is read and dropped, and the client told to try again later.
        self.failed: OSError | None = None

    @property
    def spooled(self) -> bool:
        return self.path is not None

    async def add(self, piece: bytes) -> None:
        if self.failed is not None:
            return
        try:
            await self._add(piece)
        except OSError as exc:
            log.error("smtp.spool_failed", error=str(exc))
            self.failed = exc
            with contextlib.suppress(OSError):
                await self.discard()

    async def _add(self, piece: bytes) -> None:
        if self._unstuffer is None:
            self._parts.append(piece)
            self.size += len(piece)
            if self.spool_dir is not None and self.size > self.spool_threshold:
                await self._start_spool(self.spool_dir)
            return
        self._queue(self._unstuffer.feed(piece))
        if self._pending_size >= SPOOL_WRITE_BYTES:
            await self._flush()

    async def content(self) -> bytes:
        """The whole mail, unstuffed: read back from the spool file if it went there.

        OSError when the spool file cannot be written or read back.
        """
        if self._unstuffer is None:
            return unstuff(b"".join(self._parts))
        self._queue(self._unstuffer.finish())
        await self._flush()
        handle, path = self._file, self.path
        assert handle is not None
        assert path is not None
        await asyncio.to_thread(handle.close)  # closing twice (in discard) is harmless
        return await asyncio.to_thread(path.read_bytes)

    async def discard(self) -> None:
        """Forget the bytes and remove the spool file; safe to call more than once.

        Shielded: it runs on while the transfer's task is being cancelled (the client
        went away), so no file is left behind.
        """
        self._parts, self._pending, self._pending_size = [], [], 0
        handle, path = self._file, self.path
        self._file, self.path, self._unstuffer = None, None, None
        if path is not None:
            await asyncio.shield(asyncio.to_thread(_close_and_remove, handle, path))

    async def _start_spool(self, spool_dir: Path) -> None:
        self._file, path = await asyncio.to_thread(_create_spool_file, spool_dir)
        self.path = path
        self.size = 0
        self._unstuffer = Unstuffer()
        parts, self._parts = self._parts, []
        for part in parts:
            self._queue(self._unstuffer.feed(part))
        await self._flush()
        log.debug("smtp.data_spooled", file=path.name)

    def _queue(self, data: bytes) -> None:
        if data:
            self._pending.append(data)
            self._pending_size += len(data)
            self.size += len(data)

    async def _flush(self) -> None:
        if not self._pending:
            return
        data, self._pending, self._pending_size = b"".join(self._pending), [], 0
        assert self._file is not None
        await asyncio.to_thread(self._file.write, data)


def _create_spool_file(spool_dir: Path) -> tuple[BinaryIO, Path]:
    spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp: mode 0600 and O_EXCL, in our own data dir rather than a shared /tmp.
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix=SPOOL_PREFIX, suffix=".eml")
    return os.fdopen(fd, "wb"), Path(name)


def _close_and_remove(handle: BinaryIO | None, path: Path) -> None:
    if handle is not None:
        with contextlib.suppress(OSError):  # a full disk fails the flush: dropped anyway
            handle.close()
    path.unlink(missing_ok=True)


def remove_stale_spool_files(spool_dir: Path, *, now_epoch_s: float) -> int:
    """Remove spool files a crash left behind; returns how many. Blocking file I/O.

    Only files older than an hour: on PostgreSQL another daemon may share the data dir
    and be writing its own spool files right now.
    """
    cutoff = now_epoch_s - STALE_SPOOL_AGE_S
    removed = 0
    if not spool_dir.is_dir():
        return 0
    for entry in spool_dir.glob(f"{SPOOL_PREFIX}*"):
        try:
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
