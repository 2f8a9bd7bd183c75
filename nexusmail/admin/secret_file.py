"""A random secret generated once and kept in the data dir (the session signing key).

Restarting the daemon must not log every operator out, so the key outlives the
process; it is created with mode 0600 and never logged.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from nexusmail.files import create_secret_once

SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, written first when missing (blocking file I/O)."""
    if not path.exists():
        create_secret_once(path, secrets.token_hex(SECRET_BYTES) + "\n")
    secret = path.read_text(encoding="ascii").strip()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path}: the secret is too short; delete the file to renew it")
    return secret.encode("ascii")


