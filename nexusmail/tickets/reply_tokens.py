"""Signed reply addresses: support+<token>@domain on every assignment mail's Reply-To.

The token binds (intervention, assignment, recipient) with an HMAC, so a reply can be
matched to its assignment even when a mail client drops In-Reply-To, and a made-up or
altered address matches nothing (replies are authenticated). It is lower-case hex because some
MTAs lower-case local parts. Keys rotate: the first signs, every listed key verifies.
Who may act on a matched reply is decided elsewhere (the sender must be the employee).

The keys come from config, or are generated once: a fresh install must work with no
key configured, and must keep verifying the replies to mails it already sent after a
restart, so a generated key is written to the data dir (mode 0600) and reused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from nexusmail.config import Settings
from nexusmail.files import create_secret_once
from nexusmail.paths import reply_key_path

SIGNATURE_HEX_CHARS = 20  # 80 bits: forging one by guessing is out of reach
_TOKEN = re.compile(rf"^a(\d{{1,12}})n(\d{{1,12}})s([0-9a-f]{{{SIGNATURE_HEX_CHARS}}})$")


@dataclass(frozen=True)
class ReplyToken:
    assignment_id: int
    intervention_number: int


def sign(key: bytes, assignment_id: int, number: int, recipient: str) -> str:
    message = f"{assignment_id}.{number}.{recipient.strip().lower()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX_CHARS]


def make_token(key: bytes, assignment_id: int, number: int, recipient: str) -> str:
    return f"a{assignment_id}n{number}s{sign(key, assignment_id, number, recipient)}"


def reply_address(support_address: str, token: str) -> str:
    local, _, domain = support_address.partition("@")
    return f"{local}+{token}@{domain}"


def verify_token(keys: Sequence[bytes], token: str, recipient: str) -> ReplyToken | None:
    """The assignment `token` names if one of `keys` signed it for `recipient`, else None."""
    match = _TOKEN.match(token.strip().lower())
    if match is None:
        return None
    assignment_id, number = int(match[1]), int(match[2])
    for key in keys:
        if hmac.compare_digest(sign(key, assignment_id, number, recipient), match[3]):
            return ReplyToken(assignment_id, number)
    return None


def parse_token(token: str) -> ReplyToken | None:
    """What an (unverified) token claims; verify it against the intended recipient."""
    match = _TOKEN.match(token.strip().lower())
    return None if match is None else ReplyToken(int(match[1]), int(match[2]))


def load_reply_keys(settings: Settings) -> list[bytes]:
    """The signing key first, then the others that still verify (blocking file I/O)."""
    configured = [k.get_secret_value().encode() for k in settings.replies.secret_keys]
    if configured:
        return configured
    path = reply_key_path(settings)
    if not path.exists():
        create_secret_once(path, secrets.token_hex(32) + "\n")
    return [path.read_text(encoding="ascii").strip().encode()]

