"""Reply signing keys: configured ones win; otherwise one is generated once and kept."""

from __future__ import annotations

from pathlib import Path

from nexusmail.config import Settings
from nexusmail.paths import REPLY_KEY_FILE as KEY_FILE
from nexusmail.tickets.reply_tokens import load_reply_keys


def test_generated_key_is_kept_private_and_stable(tmp_path: Path) -> None:
    """A fresh install gets a key file (0600) and the same key after a restart."""
    settings = Settings.model_validate({"storage": {"data_dir": str(tmp_path)}})
    first = load_reply_keys(settings)
    assert load_reply_keys(settings) == first
    assert len(first[0]) == 64
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_configured_keys_win_in_order(tmp_path: Path) -> None:
    """With [replies] secret_keys set, the first signs and all verify; no file is made."""
    settings = Settings.model_validate({"storage": {"data_dir": str(tmp_path)},
                                        "replies": {"secret_keys": ["new", "old"]}})
    assert load_reply_keys(settings) == [b"new", b"old"]
    assert not (tmp_path / KEY_FILE).exists()
