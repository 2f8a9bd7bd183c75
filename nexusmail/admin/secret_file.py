"""A random secret generated once and kept in the data dir (the session signing key).

Restarting the daemon must not log every operator out, so the key outlives the
process; it is created with mode 0600 and never logged.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, written first when missing (blocking file I/O)."""
    if not path.exists():
        _write_new_secret(path)
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path}: the secret is too short; delete the file to renew it")
    return secret.encode("ascii")


def _write_new_secret(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same dance as reply_keys: write a private temporary file, then link it into place,
    # so two processes starting together on a fresh install both read the one that won.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race; its secret is the one
    finally:
        tmp.unlink()
