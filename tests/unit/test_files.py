"""Durable file writes: whole or nothing, private when secret, first secret wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexusmail.files import copy_atomically, create_secret_once, write_atomically


def test_write_atomically_replaces_the_file_with_the_mode_asked(tmp_path: Path) -> None:
    """The new bytes replace the old ones, with the file mode given, and no temporary remains."""
    target = tmp_path / "manifest.json"
    target.write_bytes(b"old")
    write_atomically(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_failed_copy_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """A copy whose source vanished keeps the old target intact and cleans up after itself."""
    target = tmp_path / "blob"
    target.write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        copy_atomically(tmp_path / "missing", target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["blob"]


def test_the_first_secret_written_is_the_one_kept(tmp_path: Path) -> None:
    """A second writer of the same secret file keeps the first one's content, mode 0600."""
    path = tmp_path / "keys" / "secret.key"
    create_secret_once(path, "first\n")
    create_secret_once(path, "second\n")
    assert path.read_text(encoding="ascii") == "first\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]
