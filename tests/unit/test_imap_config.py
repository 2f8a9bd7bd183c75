"""IMAP account settings and the pure helpers of collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusmail.config import ConfigError, load_settings
from nexusmail.ingest.imap.account import backoff_s
from nexusmail.ingest.imap.session import chunk_by_size

ACCOUNT = '[[imap.accounts]]\nname = "a"\nusername = "u"\npassword = "p"\n'


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "n.toml"
    path.write_text(text)
    load_settings(path, environ={})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_plain_imap_is_allowed_on_loopback(tmp_path: Path, host: str) -> None:
    """tls = "none" is accepted for a loopback host."""
    _load(tmp_path, ACCOUNT + f'host = "{host}"\ntls = "none"\n')


def test_plain_imap_is_refused_beyond_loopback(tmp_path: Path) -> None:
    """tls = "none" to a remote host is refused with an error naming the key and host."""
    with pytest.raises(ConfigError, match=r'\[imap\] accounts\.0.*tls = "none".*imap\.firm\.it'):
        _load(tmp_path, ACCOUNT + 'host = "imap.firm.it"\ntls = "none"\n')


def test_account_needs_a_credential_and_a_unique_name(tmp_path: Path) -> None:
    """No password nor token command, or two accounts with one name, are refused."""
    with pytest.raises(ConfigError, match="password or oauth2_token_command"):
        _load(tmp_path, '[[imap.accounts]]\nname = "a"\nhost = "h"\nusername = "u"\n')
    with pytest.raises(ConfigError, match="'a' is used twice"):
        _load(tmp_path, (ACCOUNT + 'host = "h"\n') * 2)


def test_chunks_are_bounded_by_count_and_bytes() -> None:
    """Bodies are fetched in groups bounded in mails and in bytes; a big mail goes alone."""
    sizes = {1: 10, 2: 10, 3: 100, 4: 10, 5: 10}
    assert chunk_by_size([1, 2, 3, 4, 5], sizes, max_count=2, max_bytes=50) == [
        [1, 2], [3], [4, 5]]


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    """Reconnect delays double from the minimum up to the maximum, within +-20%."""
    assert 0.8 <= backoff_s(1, 1.0, 300.0) <= 1.2
    assert 6.4 <= backoff_s(4, 1.0, 300.0) <= 9.6
    assert 240 <= backoff_s(30, 1.0, 300.0) <= 360
