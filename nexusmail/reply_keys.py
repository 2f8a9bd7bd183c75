"""The HMAC keys that sign reply addresses: from config, or generated once.

A fresh install must work with no key configured, and must keep verifying the replies
to mails it already sent after a restart, so a generated key is written to the data
dir (mode 0600) and reused.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from nexusmail.config import Settings

KEY_FILE = "reply-signing.key"


def load_reply_keys(settings: Settings) -> list[bytes]:
    """The signing key first, then the others that still verify (blocking file I/O)."""
    configured = [k.get_secret_value().encode() for k in settings.replies.secret_keys]
    if configured:
        return configured
    path = settings.storage.data_dir / KEY_FILE
    if not path.exists():
        _write_new_key(path)
    return [path.read_text(encoding="ascii").strip().encode()]


def _write_new_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a temporary file, then link it into place: a CLI command and the daemon
    # starting together on a fresh install both end up reading the one key that won.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race; its key is the one
    finally:
        tmp.unlink()
