"""Durable file writes: the one place that knows how to make a file survive a crash.

A file is written under a temporary name in its final directory, fsynced, then renamed
(or linked) into place, and the directory is fsynced so the new name is durable too: a
crash leaves either the whole old file, the whole new one, or none, never a torn one.
Secrets are created with mode 0600 from the first byte, never chmod-ed afterwards.
Blocking file I/O throughout: async callers run these off the event loop.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

PRIVATE_MODE = 0o600


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Flush a directory's entries, so a rename or link inside it survives a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, target: Path) -> None:
    """Rename an already fsynced `tmp` over `target` and make the new name durable."""
    os.replace(tmp, target)
    fsync_dir(target.parent)


def write_atomically(target: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `target` whole or not at all, with the file mode `mode`."""
    _write_via_temporary(target, lambda tmp: tmp.write_bytes(data), mode)


def copy_atomically(source: Path, target: Path, *, mode: int = 0o644) -> None:
    """Copy `source` to `target` whole or not at all (streamed, not read into memory)."""
    _write_via_temporary(target, lambda tmp: shutil.copyfile(source, tmp), mode)


def create_secret_once(path: Path, text: str) -> None:
    """Create `path` holding `text`, mode 0600, unless it exists: the first writer wins.

    The secret is written to a private temporary file and then linked into place, so two
    processes starting together on a fresh install (the daemon and a CLI command) never
    see a half-written file and both go on with the one secret that won.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another process won the race; its secret is the one
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _write_via_temporary(target: Path, fill: Callable[[Path], object], mode: int) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, mode)  # before the content: a secret is never readable by others
        fill(tmp)
        fsync_file(tmp)
        replace_durably(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
